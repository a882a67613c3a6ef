"""The queue service: ward services and counters, kiosk tickets, calling, the display board."""
