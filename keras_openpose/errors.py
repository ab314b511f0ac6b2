"""The project's exception types; the CLI turns each into one line and an exit status.

* :class:`DataError` (status 2): bad user input; the message names the file or argument and the
  problem on one line.
* :class:`ClusterError` (status 3): a distributed run lost a worker, or a peer never started; the
  message names the worker. Relaunching the same commands resumes from the last checkpoint.
* :class:`Preempted` (status :data:`PREEMPTED_EXIT_CODE`): a worker received SIGTERM; every worker
  saved a checkpoint at the same step and stopped. Relaunching the same commands resumes exactly.
"""

#: Exit status of a run stopped by SIGTERM after its checkpoint was written (tf.distribute's
#: conventional restart code): "relaunch me", as opposed to a failure.
PREEMPTED_EXIT_CODE = 42


class DataError(Exception):
    """Bad input: a missing or unreadable file, an annotation file that is not COCO, a bad option."""


class ClusterError(Exception):
    """A distributed run cannot go on: a worker died or never joined (the message names it)."""


class Preempted(Exception):
    """SIGTERM reached a worker; all workers checkpointed at step :attr:`step` and stopped."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step
