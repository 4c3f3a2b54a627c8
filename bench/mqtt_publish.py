"""MQTT load for bench/mqtt.ts on Debian's python3-paho-mqtt: COUNT QoS 1 publishes spread over
DEVICES device topics, up to INFLIGHT unacknowledged at a time; prints one JSON line with the
seconds until every PUBACK was seen.

Usage: mqtt_publish.py HOST PORT USER PASSWORD TENANT DEVICES COUNT INFLIGHT BASE_TS_MS
"""
import json
import sys
import time

import paho.mqtt.client as mqtt

host, port, user, password, tenant = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
devices, count, inflight, base = (int(a) for a in sys.argv[6:10])
acked = 0


def on_publish(client, userdata, mid):
    global acked
    acked += 1


client = mqtt.Client(client_id="bench-mqtt", clean_session=True, protocol=mqtt.MQTTv311)
client.username_pw_set(user, password)
client.max_inflight_messages_set(inflight)
client.max_queued_messages_set(0)
client.on_publish = on_publish
client.connect(host, port, keepalive=60)
client.loop_start()
deadline = time.time() + 20
while not client.is_connected():
    if time.time() > deadline:
        raise SystemExit("could not connect")
    time.sleep(0.02)
start = time.time()
for i in range(count):
    d = i % devices
    ts = base + i
    body = json.dumps({"ts": ts, "location": {"lat": 52.5, "lon": 13.4}, "metrics": {"temp": i % 40, "seq": i}})
    client.publish(f"tenant/{tenant}/device/dev-{d}/telemetry", body, qos=1)
    while i + 1 - acked > inflight * 4:
        time.sleep(0.001)
while acked < count:
    if time.time() - start > 600:
        raise SystemExit(f"only {acked} of {count} acknowledged")
    time.sleep(0.005)
seconds = time.time() - start
client.disconnect()
client.loop_stop()
print(json.dumps({"acked": acked, "seconds": seconds}))
