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
        assert sub.consumer != sub.source
