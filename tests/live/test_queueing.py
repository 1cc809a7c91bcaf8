"""The queue controller without a widget: what it lists, filters, queues and keeps.

Every test runs inside an event loop, as a Jupyter kernel does.
"""

from __future__ import annotations

import httpx
import pandas as pd
import pytest

from cfanalytics import Client
from cfanalytics.live import JOB_COLUMNS, QueueController

from ..client.test_client import status_body
from ..conftest import ACCESS_KEY, SECRET_KEY
from .doubles import accepted, created, locked, mock_client, run


def test_controller_lists_only_queueable_jobs_and_filters_them() -> None:
    """Created, Pending and Failed jobs are listed; Running is not; filters narrow the list."""
    jobs = [
        created(1, location="London"),
        created(2, location="Frankfurt", mirroring=True),
        created(3, jobstateid=6, jobstatename="Failed", location="London"),
        created(4, jobstateid=4, jobstatename="Running"),
    ]

    async def scenario() -> None:
        controller = QueueController(mock_client({}, *jobs), 7)
        listed = await controller.refresh()
        assert listed["jobid"].tolist() == [1, 2, 3]
        assert dict(listed.dtypes) == {
            k: pd.api.types.pandas_dtype(v) for k, v in JOB_COLUMNS.items()
        }  # type: ignore[arg-type]
        assert controller.options("location") == ["Frankfurt", "London"]
        assert controller.choices(location="London")["jobid"].tolist() == [1, 3]
        assert controller.choices(location="London", state="Failed")["jobid"].tolist() == [3]
        assert controller.choices(kind="mirror")["jobid"].tolist() == [2]
        with pytest.raises(ValueError, match="can filter on"):
            controller.choices(machine="x")

    run(scenario)


def test_controller_keeps_every_answer_and_hands_on_only_the_accepted() -> None:
    """One job accepted, one refused by an envelope, one refused by a 500: each kept."""
    answers = {1: accepted, 2: locked, 3: lambda: httpx.Response(500, text="oops")}
    handed: list[list[int]] = []

    async def scenario() -> None:
        controller = QueueController(mock_client(answers, created(1), created(2), created(3)), 7)
        controller.on_queued(lambda results: handed.append([r.jobid for r in results]))
        await controller.refresh()
        assert controller.confirmation([1, 2, 3]) == "Queue 3 install jobs on ASID 7: 1, 2, 3?"
        outcomes = await controller.queue([1, 2, 3])
        assert [o.ok for o in outcomes] == [True, False, False]
        assert outcomes[0].describe() == "queued: Queued"
        assert "image locked by diffid: 218595" in outcomes[1].describe()
        assert "500" in outcomes[2].describe()  # and the API may have acted on it:
        assert "may have been queued" in outcomes[2].describe()
        assert "may have been queued" not in outcomes[1].describe()  # refused: it did not
        assert handed == [[1]]
        assert controller.jobs["jobid"].tolist() == [2, 3]  # 1 is queued now
        table = controller.outcome_table()
        assert table["ok"].tolist() == [True, False, False]
        with pytest.raises(ValueError, match="not a queueable job"):
            await controller.queue([1])

    run(scenario)


def test_controller_works_with_the_sync_client_too() -> None:
    """The same controller drives a blocking Client (one code path)."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/status"):
            return httpx.Response(200, text=status_body(created(5)))
        return accepted()

    transport = httpx.MockTransport(handler)
    client = Client(access_key=ACCESS_KEY, secret_key=SECRET_KEY, transport=transport)

    async def scenario() -> None:
        controller = QueueController(client, 7)
        await controller.refresh()
        outcomes = await controller.queue([5])
        assert outcomes[0].ok and controller.queued[0].jobid == 5

    run(scenario)
