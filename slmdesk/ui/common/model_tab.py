"""The base of the tabs that classify with the window's model (Classify, Data sets): the
database and its repositories, the model (loaded here, or on a remote engine), the error
banner and the engine run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import Signal, SignalInstance
from PySide6.QtWidgets import (
    QComboBox,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableView,
    QTableWidget,
    QTabWidget,
    QWidget,
)

from slmdesk.remote.classify import classify_refusal
from slmdesk.store.classifiers import ClassifierRepository
from slmdesk.store.datasets import DatasetRepository
from slmdesk.ui.common.classify_run import ClassifyRun
from slmdesk.ui.common.model_choice import ModelChoice
from slmdesk.ui.common.model_messages import NO_MODEL_LOADED, clear_no_model
from slmdesk.ui.common.tab_frame import FIRST_COLUMN_SHARE, tab_frame
from slmdesk.ui.common.tasks import BackgroundTasks

if TYPE_CHECKING:
    import sqlite_utils

    from slmdesk.classify.evaluate import EvalReport
    from slmdesk.ui.common.column_fit import ColumnFitter
    from slmdesk.ui.common.confusion import ConfusionMatrix
    from slmdesk.ui.common.metrics import ReportPanel
    from slmdesk.ui.common.widgets import ErrorBanner
    from slmdesk.ui.engine_thread import ClassifyJob, EngineClient


class TabLayout(Protocol):
    """The part of a tab that builds its widgets and lays them out."""

    def build(self) -> None: ...


class ModelTab(QWidget):
    """A tab that classifies texts on the engine thread. It is built in one order:
    ``add_parts`` (the subclass's parts and state, its ``layout_parts`` among them), the
    layout's ``build`` (which lays the columns out with ``lay_out_frame``), ``join_parts``
    (which starts ``runner`` with ``start_runner`` and connects the parts), then
    ``update_controls``, which keeps the buttons in step from then on. The window calls
    ``set_model`` with its model (a ``ModelChoice``) whenever that changes."""

    error_shown = Signal(str)
    model_set = Signal()  # set_model told the tab of the window's model (again)
    evaluated = Signal(object)  # the evaluation's result (Classify: EvalReport; Data sets: EvalRun)
    exported = Signal(str)  # the path written

    banner: ErrorBanner
    splitter: QSplitter
    runner: ClassifyRun
    # the run's widgets and the evaluation report, which the subclass lays out
    model_note: QLabel
    progress: QProgressBar
    cancel_button: QPushButton
    report_panel: ReportPanel
    eval_summary: QLabel
    per_label: QTableWidget
    confusion: ConfusionMatrix
    # what both tabs show of their texts: a table with a label filter, the chosen row's
    # details, a status line, the tabs beside the table and the evaluate button
    table: QTableView
    column_fitter: ColumnFitter
    label_filter: QComboBox
    details_title: QLabel
    details_text: QPlainTextEdit
    status: QLabel
    tabs: QTabWidget
    evaluate_button: QPushButton

    def __init__(self, db: sqlite_utils.Database, engine: EngineClient,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.db = db
        self.engine = engine
        self.classifiers = ClassifierRepository(db)
        self.datasets = DatasetRepository(db)
        self.choice = ModelChoice()  # the window's model, as set_model last told it
        # Why the chosen remote model's engine cannot classify (None: it can, a run finds
        # out, or no remote model is chosen).
        self.remote_refusal: str | None = None
        self.report: EvalReport | None = None
        self.tasks = BackgroundTasks(self)  # file reads and writes of the parts
        self.layout_parts = self.add_parts()
        self.layout_parts.build()
        self.join_parts()
        self.update_controls()

    def add_parts(self) -> TabLayout:
        """Make the tab's parts and state; return the part that builds the widgets."""
        raise NotImplementedError

    def join_parts(self) -> None:
        """Start the run (``start_runner``) and connect the built parts."""
        raise NotImplementedError

    def lay_out_frame(self, name: str, columns: Sequence[QWidget], sizes: Sequence[int],
                      first_share: float = FIRST_COLUMN_SHARE) -> None:
        """The error banner over a splitter of ``columns`` (see ``tab_frame``)."""
        self.banner, self.splitter = tab_frame(self, name, columns, sizes, first_share)
        self.banner.shown.connect(self.error_shown)

    def start_runner(self, progress: QProgressBar, status: QLabel) -> ClassifyRun:
        """The engine run, shown on this progress bar and status line."""
        self.runner = ClassifyRun(self.engine, lambda: self.choice, progress, status, self)
        self.runner.state_changed.connect(self.update_controls)
        return self.runner

    @property
    def job(self) -> ClassifyJob | None:
        """The classification running now, if any."""
        return self.runner.job

    def show_error(self, text: str, *, until: SignalInstance | None = None) -> None:
        """Show ``text`` in the tab's banner; with ``until``, only until that signal says
        its cause is gone (``ErrorBanner.show_error``)."""
        self.banner.show_error(text, until=until)

    def clear_error(self) -> None:
        self.banner.clear_error()

    @property
    def ready(self) -> bool:
        """Whether a run can start: a model is loaded, or a remote one that can classify (as
        far as its engine's last check tells) is chosen."""
        if self.choice.remote is not None:
            return self.remote_refusal is None
        return self.choice.loaded is not None

    def not_ready_text(self) -> str:
        """Why no run can start: no model yet, or the remote engine cannot classify."""
        if self.choice.remote is not None and self.remote_refusal is not None:
            return f"{self.choice.name} cannot classify here: {self.remote_refusal}"
        return NO_MODEL_LOADED

    def set_model(self, choice: ModelChoice) -> None:
        """The window's model changed (``choice.loaded`` is None while none is ready here;
        with ``choice.remote``, its engine scores the texts)."""
        self.choice = choice
        engine = choice.remote_engine
        self.remote_refusal = classify_refusal(engine) if engine is not None else None
        self.model_changed()
        if self.ready:
            clear_no_model(self.banner)  # its cause is gone
        self.update_controls()
        self.model_set.emit()

    def say_not_ready(self) -> None:
        """Show why no run can start (``not_ready_text``), until the model changes."""
        self.show_error(self.not_ready_text(), until=self.model_set)

    def model_changed(self) -> None:
        """Show the new model (``set_model`` then clears a stale "no model" message and
        updates the controls)."""

    def update_controls(self) -> None:
        """Enable what can be done now."""
        raise NotImplementedError
