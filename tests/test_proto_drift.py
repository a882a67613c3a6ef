"""The committed event classes are exactly what protoc generates from proto/."""
from motcua_testing import gen_proto


def test_generated_code_matches_the_proto():
    assert gen_proto.TARGET.read_bytes() == gen_proto.generate(), (
        "libs/motcua_common/events_pb2.py is out of date: run PYTHONPATH=tests/support python -m motcua_testing.gen_proto"
    )


def test_every_message_but_the_envelope_is_a_registered_event():
    from motcua_common import events, events_pb2

    messages = set(events_pb2.DESCRIPTOR.message_types_by_name) - {"Envelope"}
    assert messages == set(events.EVENT_TYPES)


def test_every_subscription_names_a_known_event_and_queue_names_are_unique():
    from motcua_common import topology

    queues = [s.queue for s in topology.SUBSCRIPTIONS]
    assert len(queues) == len(set(queues))
    for sub in topology.SUBSCRIPTIONS:
        assert sub.event_type in topology.EVENT_TYPES
        # A service hears its own events only where the offices' copies of them come up.
        assert sub.consumer != sub.source or sub in topology.OFFICE_READ_MODELS


def test_every_subscription_has_a_handler_and_every_handler_a_subscription():
    """A queue bound with nobody consuming it grows until the broker's disk alarm stops
    every publisher; a handler without a subscription never hears anything."""
    import ast
    from pathlib import Path

    from motcua_common import topology

    root = Path(__file__).resolve().parents[1]
    handled = set()
    for service in ("identity", "dossier", "queue", "notify", "rating"):
        tree = ast.parse((root / "services" / service / "worker.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "event_handler"
                    and node.args and isinstance(node.args[0], ast.Constant)):
                handled.add((service, node.args[0].value))
    subscribed = {(s.consumer, s.event_type) for s in topology.SUBSCRIPTIONS}
    assert subscribed - handled == set(), "subscribed, but no worker handles it"
    assert handled - subscribed == set(), "handled, but not in topology.SUBSCRIPTIONS"
