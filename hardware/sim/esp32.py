"""Stand-in for the ESP32 `esp32` module: NVS and OTA partitions persisted in the device folder.

NVS lives in nvs.json (written on commit(), like the real driver); each app
partition is a sparse file under partitions/, and partitions/otadata.json records
which slot boots next and each slot's OTA state (see simdev/partition.py). The OTA
area of the filesystem is a littlefs image (simdev/flash.py). The classes
load on first use so the simulated board costs the VM heap little.
"""

HEAP_DATA = 4
HEAP_EXEC = 1
WAKEUP_ALL_LOW = False
WAKEUP_ANY_HIGH = True


def __getattr__(name):
    if name == "NVS":
        from simdev.nvs import NVS

        return NVS
    if name == "Partition":
        from simdev.partition import Partition

        return Partition
    if name == "sim_flash_root":
        # Sim only (never on a real board): the OTA area is a littlefs image mounted here.
        from simdev.flash import mount

        return mount()
    raise AttributeError(name)


def raw_temperature():
    return 120


def idf_heap_info(capabilities):
    return [(240000, 16, 160000, 100000)]
