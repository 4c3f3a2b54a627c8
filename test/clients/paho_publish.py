"""A device on Debian's python3-paho-mqtt (1.6): QoS 1 publishes with a connection drop in the middle.

Usage: paho_publish.py HOST PORT USER PASSWORD TOPIC COUNT BASE_TS_MS

The first half is published while the client reads nothing, so none of its PUBACKs is seen; then
the TCP connection is cut under the client. paho's network loop reconnects (persistent session)
and sends the unacknowledged messages again with DUP set, then the second half goes out. Prints
one JSON line: connects, in flight at the drop, and how many publishes were acknowledged.
"""
import json
import socket
import sys
import time

import paho.mqtt.client as mqtt

host, port, user, password, topic = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
count, base = int(sys.argv[6]), int(sys.argv[7])
connects = []


def on_connect(client, userdata, flags, rc):
    connects.append(rc)


def wait(condition, seconds, what):
    deadline = time.time() + seconds
    while not condition():
        if time.time() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.02)


client = mqtt.Client(client_id=f"paho-{topic.split('/')[3]}", clean_session=False, protocol=mqtt.MQTTv311)
client.username_pw_set(user, password)
client.reconnect_delay_set(min_delay=1, max_delay=2)
client.on_connect = on_connect
client.connect(host, port, keepalive=30)
deadline = time.time() + 20
while not connects and time.time() < deadline:
    client.loop(timeout=0.1)
if connects != [0]:
    raise SystemExit(f"connect refused: {connects}")

def payload(i):
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime((base + i * 1000) // 1000)) + "Z"
    return json.dumps({"ts": ts, "metrics": {"n": i}})

half = count // 2
infos = [client.publish(topic, payload(i), qos=1) for i in range(half)]
in_flight = len(client._out_messages)  # no PUBACK read yet: every one of them
client.socket().shutdown(socket.SHUT_RDWR)
client.loop_start()  # sees the dead socket, reconnects, resends with DUP
wait(lambda: len(connects) >= 2 and client.is_connected(), 30, "the reconnect")
infos += [client.publish(topic, payload(i), qos=1) for i in range(half, count)]
wait(lambda: all(i.is_published() for i in infos), 30, "every PUBACK")
client.disconnect()
client.loop_stop()
print(json.dumps({"connects": connects, "in_flight_at_drop": in_flight, "acknowledged": sum(i.is_published() for i in infos)}))
