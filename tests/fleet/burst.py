"""A device that publishes QoS 1 messages as fast as its in-flight window allows, noting
which of them the broker acknowledged: what a stop in the middle of traffic must not lose."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt

from fleet.broker.url import BrokerAddress


class Burst:
    def __init__(self, broker: BrokerAddress, client_id: str, in_flight: int) -> None:
        self._acknowledged: list[int] = []
        self._lock = threading.Lock()
        self._wanted = 0
        self._enough = threading.Event()
        self._sent: dict[int, bytes] = {}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.max_inflight_messages_set(in_flight)
        self.client.on_publish = self._on_publish
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _on_publish(self, _c: mqtt.Client, _u: object, mid: int, *_: object) -> None:
        with self._lock:
            self._acknowledged.append(mid)
            if self._wanted and len(self._acknowledged) >= self._wanted:
                self._enough.set()

    def send(self, topic: str, payloads: list[bytes], *, wait_for: int, timeout: float) -> bool:
        """Queue every payload at once; True once `wait_for` of them are acknowledged."""
        self._wanted = wait_for
        for payload in payloads:
            self._sent[self.client.publish(topic, payload, qos=1).mid] = payload
        return self._enough.wait(timeout)

    def acknowledged(self) -> set[bytes]:
        """What the broker promised to keep (its PUBACK came back)."""
        with self._lock:
            return {self._sent[mid] for mid in self._acknowledged if mid in self._sent}

    def stop(self) -> None:
        self.client.loop_stop()
