"""A switch announced through Home Assistant discovery by ha-mqtt-discoverable, written as its
README shows: the callback switches the thing and reports the new state.

usage: hmd_switch.py HOST PORT NAME
"""

import sys
import time

from ha_mqtt_discoverable import Settings
from ha_mqtt_discoverable.sensors import Switch, SwitchInfo

host, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
mqtt_settings = Settings.MQTT(host=host, port=port)
switch_info = SwitchInfo(name=name)
settings = Settings(mqtt=mqtt_settings, entity=switch_info)


def my_callback(client, user_data, message):
    payload = message.payload.decode()
    print(f"command {payload}", flush=True)
    if payload == "ON":
        my_switch.on()
    elif payload == "OFF":
        my_switch.off()


my_switch = Switch(settings, my_callback)
my_switch.off()
print("ready", flush=True)
while True:
    time.sleep(1)
