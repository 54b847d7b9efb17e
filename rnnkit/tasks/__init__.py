"""What a head is trained on: batches, loss, its own metrics, and a cursor for exact resumption.

The one Trainer runs any `Task`; a new kind of head (forecasting, anomaly scores, music) arrives
as a new task module here, never as a branch inside the Trainer.
"""

from .base import EpochCursor, Task
from .generated import ADDING_BASELINE_MSE, GeneratedTask, adding_problem
from .language_model import LanguageModelTask
from .sequences import IGNORE, LabelledSequencesTask, Seq2SeqTask

__all__ = ["Task", "EpochCursor", "LanguageModelTask", "LabelledSequencesTask", "Seq2SeqTask", "IGNORE",
           "GeneratedTask", "adding_problem", "ADDING_BASELINE_MSE"]
