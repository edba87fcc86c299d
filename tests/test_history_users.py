"""The History tab with a login configured (judo.app.history, ``per_user``): each inspection is logged with
its user, /history lists the signed-in user's own ("Mine only", the default) and everyone's when asked
(every signed-in user is an operator, judo.app.owner.is_operator), and the CSV export follows the same
rule. Served for real with two accounts and driven through gradio_client."""

from __future__ import annotations

import csv

import pytest
from gradio_client import Client, handle_file

from judo.app.history import COLUMNS
from tests.app_server import EXAMPLES, inspect_args, serve_config

pytestmark = pytest.mark.slow

QUERY = EXAMPLES / "bottle" / "bottle-contamination-000.png"
TEMPLATE = EXAMPLES / "templates" / "bottle" / "00.png"
ACCOUNTS = {"ana": "ana-secret", "ben": "ben-secret"}


@pytest.fixture(scope="module")
def clients(tmp_path_factory):
    from judo.engines import load_config

    root = tmp_path_factory.mktemp("history-users")
    (root / "accounts").write_text("".join(f"{u}:{p}\n" for u, p in ACCOUNTS.items()), encoding="utf-8")
    (root / "app.yaml").write_text(
        "engines:\n"
        "  - {id: comparator, kind: comparator, label: Comparator}\n"
        f"templates: {{examples_dir: '{EXAMPLES}'}}\n"
        f"history: {{enabled: true, path: '{root / 'log.sqlite'}'}}\n"
        f"records_dir: '{root / 'records'}'\n"
        f"auth: '{root / 'accounts'}'\n"
    )
    with serve_config(load_config(root / "app.yaml", env={})) as served:
        users = {u: Client(served.url, auth=(u, p), verbose=False) for u, p in ACCOUNTS.items()}
        for user, times in (("ana", 2), ("ben", 1)):
            for _ in range(times):
                users[user].predict(
                    *inspect_args(handle_file(str(QUERY)), handle_file(str(TEMPLATE)), engine="comparator"),
                    api_name="/inspect",
                )
        yield users


def _users(listed) -> list[str]:
    table, _status, _products = listed
    assert table["headers"] == COLUMNS
    return [dict(zip(COLUMNS, row, strict=True))["User"] for row in table["data"]]


def test_mine_only_is_the_default_and_everyone_is_one_click_away(clients):
    ana, ben = clients["ana"], clients["ben"]
    listed = ana.predict(api_name="/history")
    assert _users(listed) == ["ana", "ana"]
    assert listed[1] == "Mine only (ana): 2 inspections, newest first."
    assert _users(ben.predict(api_name="/history")) == ["ben"]
    everyone = ana.predict(mine_only=False, api_name="/history")
    assert _users(everyone) == ["ben", "ana", "ana"] and everyone[1] == "3 inspections, newest first."
    # The filters combine with it.
    assert _users(ben.predict(product="bottle", api_name="/history")) == ["ben"]
    assert _users(ben.predict(product="carpet", mine_only=False, api_name="/history")) == []


def test_the_csv_export_follows_the_same_rule(clients):
    for mine_only, users in ((True, ["ben"]), (False, ["ben", "ana", "ana"])):
        path = clients["ben"].predict(mine_only=mine_only, api_name="/history_csv")
        with open(path, encoding="utf-8", newline="") as f:
            assert [r["user"] for r in csv.DictReader(f)] == users


def test_a_caller_without_login_gets_nothing(clients):
    from gradio_client.exceptions import AuthenticationError

    with pytest.raises(AuthenticationError, match="Please login"):
        Client(clients["ana"].src, verbose=False)  # neither the history nor the golden endpoints
