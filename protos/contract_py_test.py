"""The generated Python stubs import under /usr/bin/python3 and build messages."""

import unittest

from presence.v1 import presence_pb2
from presence.v1 import presence_pb2_grpc


class ContractPyTest(unittest.TestCase):
    def test_session_request_round_trips(self):
        req = presence_pb2.SessionRequest(
            join=presence_pb2.Join(
                performer_id=42,
                nickname="Zoë & Co=1+1",
                customer_id=7,
                ip_address="203.0.113.5",
                registered=True,
                credits=10,
            )
        )
        out = presence_pb2.SessionRequest.FromString(req.SerializeToString())
        self.assertEqual(out.WhichOneof("event"), "join")
        self.assertEqual(out.join.nickname, "Zoë & Co=1+1")
        self.assertTrue(out.join.HasField("customer_id"))
        self.assertEqual(out.join.customer_id, 7)

    def test_guest_has_no_customer_id(self):
        join = presence_pb2.Join(performer_id=1, nickname="guest")
        self.assertFalse(join.HasField("customer_id"))

    def test_stub_has_every_rpc(self):
        for name in ("Session", "UpdateCredits", "GetRoom"):
            self.assertTrue(hasattr(presence_pb2_grpc.PresenceStub, "__init__"))
            self.assertIn(name, presence_pb2.DESCRIPTOR.services_by_name["Presence"].methods_by_name)
        self.assertTrue(hasattr(presence_pb2_grpc, "add_PresenceServicer_to_server"))


if __name__ == "__main__":
    unittest.main()
