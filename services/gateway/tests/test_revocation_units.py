"""The gateway's deny-list of disabled and deleted users: bounded in time (the longest token
lifetime) and in size, and keyed by the moment of the revocation so later tokens pass."""

from __future__ import annotations

import uuid

from kubeserve_gateway.services.authenticator import RevokedUsers


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_tokens_issued_up_to_the_revocation_are_refused_later_ones_pass() -> None:
    clock = Clock()
    revoked = RevokedUsers(ttl=900, max_entries=10, clock=clock)
    user, other = uuid.uuid4(), uuid.uuid4()
    revoked.revoke(user, at=990.5)
    assert revoked.refuses(user, issued_at=100.0)
    assert revoked.refuses(user, issued_at=990.0)  # same second: the safe side
    assert not revoked.refuses(user, issued_at=991.0)  # logged in again afterwards
    assert not revoked.refuses(other, issued_at=100.0)
    # A duplicated event changes nothing; an older one cannot shorten the refusal.
    revoked.revoke(user, at=990.5)
    revoked.revoke(user, at=500.0)
    assert len(revoked) == 1 and revoked.refuses(user, issued_at=990.0)


def test_entries_expire_after_the_longest_token_lifetime() -> None:
    clock = Clock()
    revoked = RevokedUsers(ttl=900, max_entries=10, clock=clock)
    user = uuid.uuid4()
    revoked.revoke(user, at=clock.now)
    clock.now += 899
    assert revoked.refuses(user, issued_at=900.0)
    clock.now += 2  # every token issued before the revocation has expired by now
    assert not revoked.refuses(user, issued_at=900.0)
    assert len(revoked) == 0


def test_the_list_is_bounded_and_drops_the_oldest_first() -> None:
    clock = Clock()
    revoked = RevokedUsers(ttl=900, max_entries=3, clock=clock)
    users = [uuid.uuid4() for _ in range(5)]
    for n, user in enumerate(users):
        clock.now += 1
        revoked.revoke(user, at=clock.now)
        assert len(revoked) == min(n + 1, 3)
    assert [revoked.refuses(u, issued_at=0.0) for u in users] == [False, False, True, True, True]
