"""Added inputs as new parts on object stores (GCS and S3), where a move is a copy: the
same checks as on local files (`tests.pipelines.test_plan_added_inputs`), servers started
by the tests on loopback."""

from __future__ import annotations

import pytest

from tests.pipelines.test_plan_added_inputs import check_added_inputs

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.mark.parametrize("store, scheme", [("gcs_emulator", "gs"), ("seaweedfs", "s3")])
def test_added_inputs_are_new_parts_on_an_object_store(store, scheme, request):
    server = request.getfixturevalue(store)
    check_added_inputs(f"{scheme}://{server.new_bucket('added')}/run")
