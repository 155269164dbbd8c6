"""One phone, one agent: a guard item per phone, written with the agent in one transaction,
so no two agents share a phone however their saves race; agents saved before the guards
get theirs at their next save, and meanwhile their records refuse a second agent."""
import threading

import pytest

from callback.domain import records as m
from callback.storage import Conflict, PhoneTaken

PHONE = "+14155550101"
OTHER = "+14155550102"


def save(svc, agent_id, phone, *, create=True, name=None, queues=("Sales",)):
    return svc.storage.save_agent_profile(agent_id, name=name or agent_id.title(), phone=phone,
                                          queues=list(queues), now=svc.clock.now(), create=create)


def guard_owner(svc, phone):
    """The agent id a phone's guard names, or None without a guard."""
    G = svc.storage.Guard
    try:
        return G.get("AGENT-PHONE", phone, consistent_read=True).owner
    except G.DoesNotExist:
        return None


def saved_before_the_guards(svc, agent_id, phone):
    """An agent as saved before this change: the record alone, no guard for its phone."""
    svc.storage.AgentRec("AGENT", agent_id, name=agent_id.title(), phone=phone, queues=["Sales"],
                         status=m.OFFLINE, status_changed_at=svc.clock.now()).save()


def test_a_second_agent_cannot_have_a_phone_an_agent_has(svc, main_line):
    save(svc, "alice", PHONE)
    with pytest.raises(PhoneTaken) as taken:
        save(svc, "bob", PHONE)
    assert (taken.value.agent_id, taken.value.name) == ("alice", "Alice")
    assert PHONE not in str(taken.value), "the message may be logged: no phone in it"
    assert [a.agent_id for a in svc.storage.list_agents()] == ["alice"]
    assert guard_owner(svc, PHONE) == "alice"


def test_an_agent_moved_to_a_taken_phone_is_refused_and_keeps_their_own(svc, main_line):
    save(svc, "alice", PHONE)
    save(svc, "bob", OTHER)
    with pytest.raises(PhoneTaken):
        save(svc, "bob", PHONE, create=False, name="Robert")
    bob = svc.storage.get_agent("bob")
    assert (bob.name, bob.phone) == ("Bob", OTHER)
    assert (guard_owner(svc, PHONE), guard_owner(svc, OTHER)) == ("alice", "bob")


def test_an_agent_saved_again_with_their_own_phone_is_fine(svc, main_line):
    save(svc, "alice", PHONE)
    alice = save(svc, "alice", PHONE, create=False, name="Alice Appleseed", queues=("Sales", "Support"))
    assert (alice.name, alice.phone, alice.queues) == ("Alice Appleseed", PHONE, ("Sales", "Support"))
    assert guard_owner(svc, PHONE) == "alice"


def test_changing_an_agents_phone_frees_the_old_one(svc, main_line):
    save(svc, "alice", PHONE)
    save(svc, "alice", OTHER, create=False)
    assert (guard_owner(svc, PHONE), guard_owner(svc, OTHER)) == (None, "alice")
    assert save(svc, "bob", PHONE).phone == PHONE
    assert guard_owner(svc, PHONE) == "bob"


def test_a_profile_change_leaves_the_agents_status_alone(svc, main_line):
    save(svc, "alice", PHONE)
    svc.storage.set_agent_presence("alice", m.AVAILABLE, svc.clock.now())
    assert save(svc, "alice", OTHER, create=False).status == m.AVAILABLE


def test_ids_stay_unique_and_unknown_agents_cannot_be_changed(svc, main_line):
    save(svc, "alice", PHONE)
    with pytest.raises(Conflict) as taken:
        save(svc, "alice", OTHER)
    assert not isinstance(taken.value, PhoneTaken)
    with pytest.raises(Conflict):
        save(svc, "nobody", OTHER, create=False)
    assert guard_owner(svc, OTHER) is None


def test_an_agent_saved_before_the_guards_still_keeps_their_phone(svc, main_line):
    saved_before_the_guards(svc, "alice", PHONE)
    with pytest.raises(PhoneTaken) as taken:
        save(svc, "bob", PHONE)
    assert taken.value.agent_id == "alice"
    # Their next save writes the guard their phone lacked.
    save(svc, "alice", PHONE, create=False, name="Alice A.")
    assert guard_owner(svc, PHONE) == "alice"


def test_an_agent_saved_before_the_guards_moves_to_a_new_phone(svc, main_line):
    saved_before_the_guards(svc, "alice", PHONE)
    save(svc, "alice", OTHER, create=False)
    assert (guard_owner(svc, PHONE), guard_owner(svc, OTHER)) == (None, "alice")
    assert save(svc, "bob", PHONE).phone == PHONE


def test_two_agents_sharing_a_phone_from_before_the_guards_must_be_told_apart(svc, main_line):
    """Both ring one phone: neither is saved again with it until one has another phone."""
    saved_before_the_guards(svc, "alice", PHONE)
    saved_before_the_guards(svc, "bob", PHONE)
    with pytest.raises(PhoneTaken) as taken:
        save(svc, "alice", PHONE, create=False)
    assert taken.value.agent_id == "bob"
    save(svc, "bob", OTHER, create=False)
    save(svc, "alice", PHONE, create=False)
    assert (guard_owner(svc, PHONE), guard_owner(svc, OTHER)) == ("alice", "bob")


def test_a_guard_whose_agent_no_longer_has_the_phone_is_taken_over(svc, main_line):
    """An agent record removed by hand leaves its guard behind: it blocks nobody."""
    save(svc, "alice", PHONE)
    svc.storage.AgentRec("AGENT", "alice").delete()
    assert save(svc, "bob", PHONE).phone == PHONE
    assert guard_owner(svc, PHONE) == "bob"


def race(count, target):
    """Run target(i) in `count` threads released together; returns what each returned or raised."""
    barrier = threading.Barrier(count)
    results = [None] * count

    def worker(i):
        barrier.wait()
        try:
            results[i] = target(i)
        except Exception as exc:  # collected for the test to judge
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_agents_created_at_once_with_one_phone_get_it_once(svc, main_line):
    results = race(6, lambda i: save(svc, f"agent{i}", PHONE))
    winners = [r for r in results if isinstance(r, m.Agent)]
    assert len(winners) == 1, results
    winner = winners[0].agent_id
    assert all(isinstance(r, PhoneTaken) and r.agent_id == winner for r in results if r is not winners[0])
    assert [a.agent_id for a in svc.storage.list_agents()] == [winner]
    assert guard_owner(svc, PHONE) == winner


def test_agents_moved_at_once_to_one_phone_get_it_once(svc, main_line):
    for i in range(4):
        save(svc, f"agent{i}", f"+1415555020{i}")
    results = race(4, lambda i: save(svc, f"agent{i}", PHONE, create=False))
    winners = [r.agent_id for r in results if isinstance(r, m.Agent)]
    assert len(winners) == 1, results
    assert [a.agent_id for a in svc.storage.list_agents() if a.phone == PHONE] == winners
    assert guard_owner(svc, PHONE) == winners[0]
    # The losers kept their phones and their guards.
    for i in range(4):
        if f"agent{i}" not in winners:
            assert guard_owner(svc, f"+1415555020{i}") == f"agent{i}"
