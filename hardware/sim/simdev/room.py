"""Room model: what the air, the wall and the battery read at a UTC time, per seed.

Values are a pure function of (seed, time), so two devices differ but a re-run
reproduces the same data. Temperature follows a daily sine (warmest mid-afternoon
UTC); humidity has a base level, a slow opposite swing and moisture events (a
morning shower, evening cooking) whose start times are drawn per device and per
day from the seed, rising sharply then decaying. CO2 rises with evening and night
occupancy. The wall surface sits between the air and a cold outdoors by a
temperature factor f_Rsi. sim.json "room" may override t_mean, t_amp, rh_base,
rh_amp, noise, events (a list of [start hour, spread hours, RH rise %, decay minutes,
temperature rise degC]), f_rsi, t_out; a change takes effect while the device runs
(simdev.state.room), as when a fix such as better ventilation is made.
"""

import math

DAY = 86400
# (usual start hour, spread hours, RH rise %, decay minutes, temperature rise degC)
_EVENTS = ((7.0, 1.5, 28.0, 35.0, 0.8), (18.0, 1.5, 14.0, 50.0, 1.2))


def unit(*vals):
    """Deterministic value in [0, 1] from integers (xorshift-multiply mix)."""
    h = 0x9E3779B9
    for v in vals:
        h ^= int(v) & 0xFFFFFFFF
        h = (h * 0x85EBCA6B) & 0xFFFFFFFF
        h ^= h >> 13
        h = (h * 0xC2B2AE35) & 0xFFFFFFFF
        h ^= h >> 16
    return h / 4294967295.0


class Room:
    def __init__(self, seed, p=None):
        p = p or {}
        s = self.seed = int(seed)
        self.t_mean = p.get("t_mean", 18.5 + 3.0 * unit(s, 1))
        self.t_amp = p.get("t_amp", 1.5 + 1.5 * unit(s, 2))
        self.rh_base = p.get("rh_base", 50.0 + 15.0 * unit(s, 3))
        self.rh_amp = p.get("rh_amp", 4.0)
        self.noise = p.get("noise", 0.05)
        self.events = p.get("events", _EVENTS)
        self.f_rsi = p.get("f_rsi", 0.6 + 0.2 * unit(s, 4))
        self.t_out = p.get("t_out", 7.0)

    def _phase(self, t):
        return math.sin(2.0 * math.pi * ((t % DAY) / DAY - 11.0 / 24.0))

    def air(self, t):
        """(temperature degC, RH %) at UTC epoch seconds `t`."""
        phase = self._phase(t)
        rh_ev = t_ev = 0.0
        day = int(t // DAY)
        for d in (day - 1, day):  # yesterday's late event may still be decaying
            for i, ev in enumerate(self.events):
                dt = t - d * DAY - (ev[0] + ev[1] * (unit(self.seed, d, i) - 0.5)) * 3600.0
                if 0 <= dt < 21600:
                    k = min(1.0, dt / 300.0) * math.exp(-dt / (ev[3] * 60.0))
                    rh_ev += ev[2] * k
                    t_ev += ev[4] * k
        n = self.noise * (unit(self.seed, t, 11) - 0.5)
        temp = self.t_mean + self.t_amp * phase + t_ev + 2.0 * n
        # Warmer air holds more water: RH dips a little as the room warms.
        rh = self.rh_base - self.rh_amp * phase + rh_ev + 4.0 * n
        return temp, max(1.0, min(99.0, rh))

    def surface(self, t):
        """Inner wall surface temperature: Tsi = Te + f_Rsi (Ti - Te)."""
        t_out = self.t_out + 3.0 * self._phase(t)
        return t_out + self.f_rsi * (self.air(t)[0] - t_out)

    def co2(self, t):
        """ppm: outdoor 420 plus occupants from evening to morning."""
        h = (t % DAY) / 3600.0
        occ = 1.0 if h >= 18 or h < 7 else 0.2
        return 420.0 + 700.0 * occ * (0.7 + 0.3 * unit(self.seed, int(t // 3600), 5))

    def pressure(self, t):
        return 101325.0 + 600.0 * math.sin(t / 86400.0 / 3.0 + self.seed)
