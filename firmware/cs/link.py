"""Getting online: Wi-Fi, NTP (before TLS: certificates need the time), then MQTT with
a last will, status "online" and the device's subscriptions. Used by both power modes."""

from cs import topics
from cs.mqtt import MQTTClient, Transport


def _read_file(path):
    if path is None:
        return None
    with open(path, "rb") as f:
        return f.read()


def make_client(node) -> tuple:
    """(MQTT client with last will, transport) from the config; TLS only when configured."""
    m = node.cfg["mqtt"]
    status = topics.device_topic(node.device_id, topics.STATUS)
    client = MQTTClient(
        node.device_id,
        keepalive=m["keepalive"],
        username=m["username"],
        password=m["password"],
        will=(status, topics.status_payload(topics.STATE_OFFLINE), True, 1),
        clean_session=m["clean_session"],
    )
    ctx = None
    if m["tls"]:
        from cs.tlsctx import make_tls_context  # only TLS devices pay for it

        ctx = make_tls_context(_read_file(m["ca"]), _read_file(m["cert"]), _read_file(m["key"]))
    return client, Transport(m["host"], m["port"], ctx)


async def connect(node) -> MQTTClient:
    """Wi-Fi, NTP (before TLS: certificates need the time), MQTT, status and subscriptions."""
    cfg = node.cfg
    if not node.board.wifi_connected():
        await node.board.connect_wifi(cfg["wifi"]["ssid"], cfg["wifi"]["password"])
    if node.clock_due():  # unset, or its drift due for correction
        node.sync_clock()
    client, transport = make_client(node)
    present = await client.connect(transport)
    try:
        status = topics.device_topic(node.device_id, topics.STATUS)
        await client.publish(status, topics.status_payload(topics.STATE_ONLINE), True, 1)
        if not present:  # a persistent session keeps the subscriptions
            await node.subscribe(client)
        else:
            # Subscribing again makes the broker resend the retained update offer, which a
            # reset may have cut off between its delivery and its safe keeping.
            await client.subscribe(topics.device_topic(node.device_id, topics.OTA), 1)
    except Exception:
        client.close("setup failed")
        raise
    return client
