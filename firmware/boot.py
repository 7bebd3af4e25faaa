"""First file the ESP32 runs. Kept minimal so a fault in the app never blocks the REPL."""

import gc

gc.collect()
