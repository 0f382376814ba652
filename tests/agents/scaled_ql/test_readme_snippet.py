"""The README's "use the pieces in your own Acme agent" snippet runs as written."""

import pathlib
import re

import numpy as np

README = pathlib.Path(__file__).resolve().parents[3] / "README.md"


def readme_snippet(name: str) -> str:
    """The python block of README.md marked `<!-- snippet: name -->`."""
    text = README.read_text()
    match = re.search(rf"<!-- snippet: {name} -->\s*```python\n(.*?)```", text, re.DOTALL)
    assert match, f"README.md has no python block marked 'snippet: {name}'"
    return match.group(1)


def test_acme_loop_snippet_runs_on_real_data_and_ale(training_data):
    namespace = {"DATA_DIR": training_data}
    exec(compile(readme_snippet("acme-loop"), str(README), "exec"), namespace)  # noqa: S102
    learner, result = namespace["learner"], namespace["result"]
    assert learner.num_steps == 10
    assert result["episode_length"] > 0 and np.isfinite(result["episode_return"])
    # The actor acted with the learner's parameters (its variable client pulled them).
    actor = namespace["actor"]
    actor_params = actor._variable_client.params  # noqa: SLF001
    learner_params = learner.get_variables(["policy"])[0]
    import jax

    assert all(np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(actor_params),
                                                    jax.tree_util.tree_leaves(learner_params)))
