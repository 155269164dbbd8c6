"""Named users: stored on DynamoDB Local, signed in, changed on the Users page and by
`flask create-user`; a disable or a new password ends their sessions, a role change applies
on the next request, the lockout is per user and address."""
import functools
import re

import pytest
from conftest import ADMIN_PASSWORD, csrf_of, log_in, with_admin_account
from werkzeug.security import check_password_hash, generate_password_hash

from callback.domain import users as u
from callback.storage import Conflict, LastAdmin, UnknownAgent, UserTaken
from callback.web import auth

PASSWORD = "users-test-password"


@functools.lru_cache(maxsize=1)
def password_hash():
    """One scrypt hash for every user the tests store directly (each costs ~0.1 s)."""
    return generate_password_hash(PASSWORD)


@pytest.fixture
def config_overrides(config_overrides):
    return with_admin_account(config_overrides)


@pytest.fixture
def alice(svc, clock):
    """Agent record alice, in Sales."""
    svc.storage.save_agent_profile("alice", name="Alice", phone="+14155550101", queues=["Sales"],
                                   now=clock.now(), create=True)
    return svc.storage.get_agent("alice")


def add_user(svc, clock, username, role, agent_id=None, display_name=""):
    """Store a user with PASSWORD, straight through storage."""
    return svc.storage.create_user(u.User(username, display_name or username.title(), role, password_hash(),
                                          agent_id), clock.now())


def signed_in(app, username, password=PASSWORD, **extra):
    """A fresh browser signed in as `username`."""
    client = app.test_client()
    response = log_in(client, password=password, username=username, **extra)
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return client


def post(client, url, data=None):
    token = csrf_of(client.get("/login").get_data(as_text=True))
    return client.post(url, data={**(data or {}), "csrf_token": token})


# -- storage on DynamoDB Local ------------------------------------------------------------

def test_users_are_stored_read_back_and_listed_in_one_query(svc, clock, alice, no_scans):
    ann = add_user(svc, clock, "ann", u.AGENT, agent_id="alice", display_name="Ann Lee")
    add_user(svc, clock, "ada", u.ADMIN)
    assert svc.storage.get_user("ann") == ann
    assert (ann.revision, ann.created_at, ann.disabled, ann.generation) == (1, clock.now(), False, 0)
    no_scans.clear()
    assert [x.username for x in svc.storage.list_users()] == ["ada", "ann"]
    assert no_scans == ["Query"]
    assert svc.storage.get_user("nobody") is None and svc.storage.get_user("") is None


def test_a_name_is_taken_once_and_an_agent_record_must_exist(svc, clock, alice):
    add_user(svc, clock, "ann", u.AGENT, agent_id="alice")
    with pytest.raises(UserTaken):
        add_user(svc, clock, "ann", u.SUPERVISOR)
    with pytest.raises(UnknownAgent):
        add_user(svc, clock, "bo", u.AGENT, agent_id="ghost")
    assert svc.storage.get_user("bo") is None
    ann = svc.storage.get_user("ann")
    with pytest.raises(UnknownAgent):
        svc.storage.save_user(ann, ann.evolve(agent_id="ghost"), clock.now())


def test_a_change_from_a_stale_read_conflicts(svc, clock):
    add_user(svc, clock, "sue", u.SUPERVISOR)
    read = svc.storage.get_user("sue")
    svc.storage.save_user(read, read.evolve(display_name="Sue B"), clock.now())
    with pytest.raises(Conflict):
        svc.storage.save_user(read, read.evolve(role=u.ADMIN), clock.now())
    assert svc.storage.get_user("sue").role == u.SUPERVISOR


def test_the_last_enabled_admin_cannot_be_demoted_or_disabled(svc, clock):
    ada = add_user(svc, clock, "ada", u.ADMIN)
    for change in ({"role": u.SUPERVISOR}, {"disabled": True}):
        with pytest.raises(LastAdmin):
            svc.storage.save_user(ada, ada.evolve(**change), clock.now())
    bob = add_user(svc, clock, "bob", u.ADMIN)
    svc.storage.save_user(ada, ada.evolve(disabled=True), clock.now())
    with pytest.raises(LastAdmin):
        svc.storage.save_user(bob, bob.evolve(role=u.AGENT), clock.now())


def test_two_admins_demoting_each_other_at_once_leave_one(svc, clock, monkeypatch):
    """The race made certain: the second demotion decides from a list read before the first
    landed (both still admins); the transaction's check on the other admin refuses it."""
    ada, bob = add_user(svc, clock, "ada", u.ADMIN), add_user(svc, clock, "bob", u.ADMIN)
    before = svc.storage.list_users()
    svc.storage.save_user(bob, bob.evolve(role=u.SUPERVISOR), clock.now())
    monkeypatch.setattr(svc.storage, "list_users", lambda: before)
    with pytest.raises(LastAdmin):
        svc.storage.save_user(ada, ada.evolve(role=u.SUPERVISOR), clock.now())
    monkeypatch.undo()
    assert [x.username for x in svc.storage.list_users() if x.enabled_admin] == ["ada"]


# -- signing in, sessions ------------------------------------------------------------------

def test_a_named_user_signs_in_and_the_session_records_name_and_role(app, svc, clock, main_line):
    add_user(svc, clock, "sue", u.SUPERVISOR, display_name="Sue Park")
    client = app.test_client()
    response = log_in(client, password=PASSWORD, username=" SUE")
    assert response.status_code == 302 and response.location == "/admin/dashboard"
    [record] = list(svc.storage.Session.query("SESSION"))
    assert (record.username, record.role) == ("sue", u.SUPERVISOR)
    page = client.get("/admin/dashboard").get_data(as_text=True)
    assert re.search(r'data-role="supervisor">sue · Supervisor<', page)
    assert log_in(app.test_client(), password="wrong password!", username="sue").status_code == 401


def test_current_user_and_current_admin(app, svc, clock, alice):
    add_user(svc, clock, "ann", u.AGENT, agent_id="alice", display_name="Ann Lee")
    client = signed_in(app, "ann")
    with app.test_request_context(headers={"Cookie": f"session={client.get_cookie('session').value}"}):
        assert auth.current_user() == auth.CurrentUser("ann", "Ann Lee", u.AGENT, "alice")
        assert auth.current_admin() == "ann"
    with app.test_request_context():
        assert auth.current_user() is None and auth.current_admin() is None


def test_disabling_a_user_ends_their_sessions_at_once_and_enabling_does_not_revive_them(app, svc, clock,
                                                                                         main_line):
    add_user(svc, clock, "sue", u.SUPERVISOR)
    sue = signed_in(app, "sue")
    assert sue.get("/admin/callbacks").status_code == 200
    admin = signed_in(app, "admin", ADMIN_PASSWORD)
    assert post(admin, "/admin/users/sue/disable").status_code == 302
    answer = sue.get("/admin/callbacks")
    assert answer.status_code == 302 and answer.location.startswith("/login")
    assert log_in(app.test_client(), password=PASSWORD, username="sue").status_code == 401
    assert post(admin, "/admin/users/sue/enable").status_code == 302
    assert sue.get("/admin/callbacks").status_code == 302, "an old session stays ended"
    assert signed_in(app, "sue").get("/admin/callbacks").status_code == 200


def test_a_new_password_ends_their_sessions(app, svc, clock, main_line):
    add_user(svc, clock, "sue", u.SUPERVISOR)
    sue = signed_in(app, "sue")
    admin = signed_in(app, "admin", ADMIN_PASSWORD)
    assert post(admin, "/admin/users/sue/password", {"password": "another good password"}).status_code == 302
    assert sue.get("/admin/callbacks").location.startswith("/login")
    assert log_in(app.test_client(), password=PASSWORD, username="sue").status_code == 401
    signed_in(app, "sue", "another good password")


def test_a_role_change_applies_on_the_next_request_for_two_reads(app, svc, clock, main_line, alice,
                                                                  monkeypatch):
    add_user(svc, clock, "sue", u.SUPERVISOR)
    add_user(svc, clock, "ada", u.ADMIN)  # so that sue, once an admin, is not the last one
    sue = signed_in(app, "sue")
    assert sue.get("/admin/dashboard").status_code == 200
    assert sue.get("/admin/ivrs").status_code == 403
    admin = signed_in(app, "admin", ADMIN_PASSWORD)
    assert post(admin, "/admin/users/sue/edit", {"role": u.ADMIN, "display_name": "Sue"}).status_code == 302
    reads = []
    for name in ("get_session", "get_user"):
        real = getattr(svc.storage, name)
        monkeypatch.setattr(svc.storage, name,
                            lambda key, real=real, name=name: reads.append(name) or real(key))
    assert sue.get("/admin/ivrs").status_code == 200
    assert reads == ["get_session", "get_user"], "one read of the session and one of the user, per request"
    assert post(admin, "/admin/users/sue/edit", {"role": u.AGENT, "agent_id": "alice"}).status_code == 302
    assert sue.get("/admin/dashboard").status_code == 403
    assert sue.get("/me").location == "/agents/alice/today"


def test_the_lockout_is_per_user_and_address(app, svc, clock):
    for name in ("sue", "sam"):
        add_user(svc, clock, name, u.SUPERVISOR)
    here, there = {"REMOTE_ADDR": "198.51.100.7"}, {"REMOTE_ADDR": "198.51.100.8"}
    statuses = [log_in(app.test_client(), password="not the password", username="sue",
                       environ_base=here).status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    assert log_in(app.test_client(), password=PASSWORD, username="sue", environ_base=here).status_code == 429
    assert log_in(app.test_client(), password=PASSWORD, username="sam", environ_base=here).status_code == 302
    assert log_in(app.test_client(), password=PASSWORD, username="sue", environ_base=there).status_code == 302


@pytest.mark.parametrize("username", ["nobody", "sue-disabled", "sue"])
def test_every_name_costs_one_hash_check(app, svc, clock, monkeypatch, username):
    add_user(svc, clock, "sue", u.SUPERVISOR)
    sue = add_user(svc, clock, "sue-disabled", u.SUPERVISOR)
    svc.storage.save_user(sue, sue.evolve(disabled=True), clock.now())
    checked = []
    monkeypatch.setattr(auth, "check_password_hash", lambda h, p: checked.append(h) or False)
    assert log_in(app.test_client(), password=PASSWORD, username=username).status_code == 401
    assert len(checked) == 1 and checked[0].startswith("scrypt:")


# -- the Users page ------------------------------------------------------------------------

def test_an_invite_with_a_generated_password_shows_it_once(app, svc, clock, alice):
    admin = signed_in(app, "admin", ADMIN_PASSWORD)
    response = post(admin, "/admin/users/new", {"username": "Ann@Example.com", "display_name": "Ann",
                                                "role": u.AGENT, "agent_id": "alice", "password": ""})
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    shown = re.search(r'id="generated-password">([^<]+)<', response.get_data(as_text=True)).group(1)
    ann = svc.storage.get_user("ann@example.com")
    assert (ann.role, ann.agent_id) == (u.AGENT, "alice") and check_password_hash(ann.password_hash, shown)
    assert ann.password_hash.startswith("scrypt:")
    assert shown not in admin.get("/admin/users").get_data(as_text=True)
    agent = signed_in(app, "ann@example.com", shown)
    assert agent.get("/").location == "/me"
    assert agent.get("/me").location == "/agents/alice/today"
    page = agent.get("/me", follow_redirects=True).get_data(as_text=True)
    assert "<h1>Alice</h1>" in page and "Away" in page


@pytest.mark.parametrize("form, field", [
    ({"username": "", "role": u.ADMIN}, "username"),
    ({"username": "ADMIN", "role": u.ADMIN}, "username"),  # the bootstrap account's name
    ({"username": "a b", "role": u.ADMIN}, "username"),
    ({"username": "ann", "role": "owner"}, "role"),
    ({"username": "ann", "role": u.AGENT}, "agent_id"),
    ({"username": "ann", "role": u.SUPERVISOR, "agent_id": "ghost"}, "agent_id"),
    ({"username": "ann", "role": u.ADMIN, "password": "short"}, "password"),
])
def test_an_invalid_invite_saves_nothing(app, svc, alice, form, field):
    admin = signed_in(app, "admin", ADMIN_PASSWORD)
    response = post(admin, "/admin/users/new", {"password": "a good long password", **form})
    assert response.status_code == 400
    assert f'id="{field}-error"' in response.get_data(as_text=True)
    assert svc.storage.list_users() == []


def test_the_page_refuses_to_leave_no_enabled_admin(app, svc, clock):
    add_user(svc, clock, "ada", u.ADMIN)
    admin = signed_in(app, "admin", ADMIN_PASSWORD)
    answer = post(admin, "/admin/users/ada/disable")
    assert "ada is the last enabled admin" in admin.get(answer.location).get_data(as_text=True)
    response = post(admin, "/admin/users/ada/edit", {"role": u.SUPERVISOR})
    assert response.status_code == 400 and "last enabled admin" in response.get_data(as_text=True)
    assert svc.storage.get_user("ada").enabled_admin


# -- flask create-user ---------------------------------------------------------------------

def test_create_user_reads_the_password_from_stdin_and_never_echoes_it(app, svc):
    result = app.test_cli_runner().invoke(args=["create-user", " Carol ", "--password-stdin",
                                                "--display-name", "Carol Ng"], input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output and "created admin carol" in result.output
    carol = svc.storage.get_user("carol")
    assert (carol.role, carol.display_name) == (u.ADMIN, "Carol Ng")
    assert check_password_hash(carol.password_hash, PASSWORD)
    signed_in(app, "carol")


def test_create_user_prompts_twice_without_echo(app, svc, alice):
    result = app.test_cli_runner().invoke(args=["create-user", "ann", "--role", "agent", "--agent", "alice"],
                                          input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output and result.output.count("Password") == 1
    assert svc.storage.get_user("ann").agent_id == "alice"


@pytest.mark.parametrize("args, stdin, says", [
    (["ann"], "short\n", "password: a password is at least 12 characters"),
    (["ann", "--role", "agent"], PASSWORD + "\n", "agent_id:"),
    (["admin"], PASSWORD + "\n", "bootstrap account"),
])
def test_create_user_refuses_what_the_page_refuses(app, svc, args, stdin, says):
    result = app.test_cli_runner().invoke(args=["create-user", *args, "--password-stdin"], input=stdin)
    assert result.exit_code == 1 and says in result.output
    assert svc.storage.list_users() == []


# -- the rules, without DynamoDB --------------------------------------------------------------

@pytest.mark.parametrize("raw, name", [(" Ann ", "ann"), ("ＡＮＮ", "ann"), ("ann.lee+cc@example.com",
                                                                            "ann.lee+cc@example.com")])
def test_usernames_are_normalised(raw, name):
    assert u.check_username(raw) == name


@pytest.mark.parametrize("raw", ["", "   ", "a b", "a/b", "an\tn", "x" * 65, "Admin"])
def test_usernames_refused(raw):
    with pytest.raises(ValueError):
        u.check_username(raw, reserved=["admin"])


@pytest.mark.parametrize("raw", ["short", "x" * 257, "twelve chars\nand a break", None])
def test_passwords_refused(raw):
    with pytest.raises(ValueError):
        u.check_password(raw)


@pytest.mark.parametrize("role, minimum, allowed", [
    (u.AGENT, u.AGENT, True), (u.AGENT, u.SUPERVISOR, False), (u.SUPERVISOR, u.SUPERVISOR, True),
    (u.SUPERVISOR, u.ADMIN, False), (u.ADMIN, u.AGENT, True), ("owner", u.AGENT, False),
    (u.ADMIN, "x", False)])
def test_the_role_hierarchy(role, minimum, allowed):
    assert u.at_least(role, minimum) is allowed


@pytest.mark.parametrize("raw, errors", [
    ({"role": u.AGENT, "agent_id": "alice"}, set()),
    ({"role": u.SUPERVISOR}, set()),
    ({"role": u.AGENT}, {"agent_id"}),
    ({"role": u.ADMIN, "agent_id": "ghost"}, {"agent_id"}),
    ({"role": "root"}, {"role"}),
    ({"role": u.ADMIN, "display_name": "x" * 101}, {"display_name"}),
])
def test_profiles(raw, errors):
    assert set(u.check_profile(raw, known_agents={"alice"})[1]) == errors


# -- a user's own password --------------------------------------------------------------------

def test_a_user_changes_their_own_password_and_every_session_of_theirs_ends(app, svc, clock):
    add_user(svc, clock, "sue", u.SUPERVISOR)
    here, elsewhere = signed_in(app, "sue"), signed_in(app, "sue")
    new = "a brand new long password"
    assert "Current password" in here.get("/me/password").get_data(as_text=True)
    wrong = post(here, "/me/password", {"current": "not it", "new": new, "again": new})
    assert wrong.status_code == 400 and "not your current password" in wrong.get_data(as_text=True)
    differ = post(here, "/me/password", {"current": PASSWORD, "new": new, "again": new + "!"})
    assert differ.status_code == 400 and "differ" in differ.get_data(as_text=True)
    short = post(here, "/me/password", {"current": PASSWORD, "new": "short", "again": "short"})
    assert short.status_code == 400
    assert check_password_hash(svc.storage.get_user("sue").password_hash, PASSWORD)
    done = post(here, "/me/password", {"current": PASSWORD, "new": new, "again": new})
    assert done.status_code == 302 and done.location == "/login"
    assert check_password_hash(svc.storage.get_user("sue").password_hash, new)
    for client in (here, elsewhere):
        assert client.get("/admin/dashboard").location.startswith("/login")
    assert log_in(app.test_client(), password=PASSWORD, username="sue").status_code == 401
    signed_in(app, "sue", new)


def test_guessing_the_current_password_is_throttled_as_a_login_is(app, svc, clock):
    add_user(svc, clock, "sue", u.SUPERVISOR)
    sue = signed_in(app, "sue")
    guess = {"current": "guess", "new": "x" * 12, "again": "x" * 12}
    statuses = [post(sue, "/me/password", guess).status_code for _ in range(6)]
    assert statuses[-1] == 429 and statuses[:5].count(400) >= 4


def test_the_environment_account_is_told_where_its_password_lives(app):
    admin = signed_in(app, "admin", ADMIN_PASSWORD)
    page = admin.get("/me/password")
    assert page.status_code == 200 and "ADMIN_PASSWORD_HASH" in page.get_data(as_text=True)
    tried = {"current": ADMIN_PASSWORD, "new": "y" * 12, "again": "y" * 12}
    assert post(admin, "/me/password", tried).status_code == 200
