"""City sensor firmware package (MicroPython; also runs in the unix VM)."""

FW_VERSION = "0.1.0"


def unload(*names: str) -> None:
    """Forget modules (and their submodules) whose work is done, so their code leaves the
    heap: the parent package's attribute is dropped too, or it would keep them alive."""
    import sys

    for name in names:
        for loaded in [n for n in sys.modules if n == name or n.startswith(name + ".")]:
            del sys.modules[loaded]
        parent, _, leaf = name.rpartition(".")
        if parent in sys.modules and hasattr(sys.modules[parent], leaf):
            delattr(sys.modules[parent], leaf)
