"""NUM_GPUS, worker roles and the lost-worker message (no cluster needed)."""

import pytest
import tensorflow as tf

from piigan_tf.distribute import (WorkerRole, lost_task, lost_worker_message, make_strategy,
                                  worker_role)


def test_num_gpus_one_keeps_the_chosen_strategy():
    assert make_strategy("default", 1) is tf.distribute.get_strategy()


@pytest.mark.parametrize("strategy", ["default", "mirrored"])
def test_num_gpus_above_the_gpus_there_are_is_refused(strategy):
    found = len(tf.config.list_physical_devices("GPU"))
    with pytest.raises(ValueError, match=r"NUM_GPUS=.*--strategy"):
        make_strategy(strategy, max(2, found + 1))


def test_num_gpus_with_multi_worker_or_below_one_is_refused():
    with pytest.raises(ValueError, match="NUM_GPUS=2 does not combine with --strategy"):
        make_strategy("multi_worker", 2)
    with pytest.raises(ValueError, match="NUM_GPUS must be at least 1.*--strategy"):
        make_strategy("default", 0)
    with pytest.raises(ValueError, match="strategy must be one of"):
        make_strategy("parameter_server")


def test_a_single_process_is_the_chief():
    role = worker_role(tf.distribute.get_strategy())
    assert role.is_chief and role.num_workers == 1


def test_lost_worker_message_names_the_peer_and_the_checkpoint(tmp_path):
    error = tf.errors.UnavailableError(None, None, (
        "Graph execution error:\n\nDetected at node d_optimizer/CollectiveReduceV2 defined at "
        "(most recent call last):\n  File \"train.py\", line 1\n\nCollective ops is aborted by: "
        "Socket closed\nAdditional GRPC error information from remote target "
        "/job:worker/replica:0/task:1 while calling /tensorflow.WorkerService/RecvBuf:\n"
        ":UNKNOWN:Error received from peer"))
    me = WorkerRole("worker", 0, 2, True)
    assert lost_task(error, me) == "worker:1"
    text = lost_worker_message(error, me, 7, tmp_path)
    assert "\n" not in text and "File" not in text
    assert text.startswith("task worker:1 of the multi-worker run is lost (at step 7")
    assert "Socket closed" in text and "none yet" in text and "same command" in text
