"""The "heap_squeeze" fault (see simdev.state): the heap a leak or fragmentation leaves."""

_held = None  # heap held by the "heap_squeeze" fault until the node resets


def squeeze(leave):
    """Fault "heap_squeeze": N fills the free heap with small pieces, then frees about N
    bytes of them spread evenly: the free heap a leak or fragmentation leaves, in holes
    too small for a packet. Held until the node resets (see simdev.power)."""
    global _held
    import gc

    gc.collect()
    before = gc.mem_free()
    # Pieces in small fixed lists: one growing list would need ever larger blocks.
    chunks = []
    rest = None
    n = 0
    try:
        while True:
            chunk = [None] * 32
            chunks.append(chunk)
            for i in range(32):
                chunk[i] = bytearray(16)
                n += 1
    except MemoryError:
        pass
    try:  # the holes too small for another list
        while True:
            rest = (rest, bytearray(16))
    except MemoryError:
        pass
    if n and leave > 0:  # with the heap full, only small ints: no allocations
        step = n * ((before - gc.mem_free()) // n) // leave
        if step < 1:
            step = 1
        k = 0
        while k < n:
            chunks[k // 32][k % 32] = None
            k += step
    _held = (chunks, rest)
    gc.collect()
    print("SIM: heap squeezed to %d bytes free" % gc.mem_free())


def release():
    """A reset empties the heap: drop what the squeeze holds before the reset's own work."""
    global _held
    _held = None
