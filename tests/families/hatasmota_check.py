"""Home Assistant's own Tasmota library reads a simulated Tasmota device.

Takes the device's retained discovery config from the broker, validates and parses it with
hatasmota, commands the relay the way hatasmota builds the command, reads the answer with
hatasmota's own parser, and prints what it found as one JSON line.

usage: hatasmota_check.py HOST PORT
"""

import json
import sys
import threading

import paho.mqtt.client as mqtt
from hatasmota.discovery import TasmotaDiscoveryMsg, get_device_config, get_switch_entities
from hatasmota.utils import get_state_power, get_topic_command_status, get_topic_stat_status

host, port = sys.argv[1], int(sys.argv[2])
found = {}
got_config = threading.Event()
got_result = threading.Event()


def on_message(client, userdata, msg):
    if msg.topic.startswith("tasmota/discovery/") and msg.topic.endswith("/config"):
        if msg.payload and "config" not in found:
            found["config_topic"] = msg.topic
            found["config"] = json.loads(msg.payload)
            got_config.set()
    elif "result_topic" in found and msg.topic == found["result_topic"]:
        power = get_state_power(msg.payload.decode(), 0)
        if power is not None:
            found["power_after_command"] = power
            got_result.set()


client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="hatasmota-check")
client.on_message = on_message
client.connect(host, port)
client.subscribe("tasmota/discovery/+/config", qos=1)
client.loop_start()
if not got_config.wait(10):
    sys.exit("no Tasmota discovery config within 10 s")

message = TasmotaDiscoveryMsg(found["config"])  # validates against hatasmota's schema
device = get_device_config(message)
relays = [cfg for cfg, _ in get_switch_entities(message) if cfg is not None]
if len(relays) != 1:
    sys.exit(f"expected one relay, hatasmota found {len(relays)}")
relay = relays[0]
found["result_topic"] = relay.result_topic
client.subscribe(relay.result_topic, qos=1)
# What hatasmota's TasmotaRelay.set_state(True) publishes.
command_topic = relay.command_topic + f"Power{relay.idx + 1}"
client.publish(command_topic, relay.state_power_on, qos=1).wait_for_publish()
if not got_result.wait(10):
    sys.exit(f"no answer on {relay.result_topic} within 10 s")
client.loop_stop()
print(
    json.dumps(
        {
            "mac": device["mac"],
            "name": device["name"],
            "command_topic": command_topic,
            "result_topic": relay.result_topic,
            "state_topic": relay.state_topic,
            "availability_topic": relay.availability_topic,
            "availability_online": relay.availability_online,
            "poll_topic": relay.poll_topic,
            "power_after_command": found["power_after_command"],
            "state_power_on": relay.state_power_on,
            # Where hatasmota asks for `Status 1` and reads the answer (the GroupTopic is in it).
            "status_command_topic": get_topic_command_status(message),
            "status1_topic": get_topic_stat_status(message, 1),
        }
    ),
    flush=True,
)
