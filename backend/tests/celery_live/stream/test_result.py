"""A finished run's result on the page: its iterations said once, not twice."""

import json

from celery_live.runs.state import RunState
from celery_live.stream.result import result_json


def finished(result, iterations):
    run = RunState(task_id="r", result=result)
    run.iteration_results.update(enumerate(iterations, start=1))
    return run


def test_a_result_that_repeats_the_iterations_says_where_they_are():
    iterations = ["<b>a</b> - iteration 1", "a - iteration 2"]
    text = result_json(finished({"name": "a", "results": iterations, "status": "completed"}, iterations))
    assert '"results": [… the 2 iterations listed]' in text
    assert "iteration 1" not in text
    assert json.loads(text.replace("[… the 2 iterations listed]", "null")) == {
        "name": "a",
        "results": None,
        "status": "completed",
    }


def test_any_other_result_is_shown_whole():
    assert json.loads(result_json(finished({"results": ["x"]}, ["y"]))) == {"results": ["x"]}
    assert json.loads(result_json(finished(["y"], ["y"]))) == ["y"]  # not a dict: nothing to elide
    assert json.loads(result_json(finished({"results": []}, []))) == {"results": []}
    assert result_json(finished("Processed: é", [])) == '"Processed: é"'
