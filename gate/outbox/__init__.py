"""Every check-in reaches the broker: durable outbox (`store`), event format (`events`), MQTT
publisher (`publisher`), and the two held together as the daemon's sink (`service`).

Nothing is imported here on purpose: importing `gate.outbox.config` must not pull in paho.
"""
