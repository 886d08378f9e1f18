"""The About dialog (licences and data attribution) and the non-blocking error reporter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QMessageBox, QTextBrowser, QVBoxLayout, QWidget

ABOUT_HTML = """
<h2>rsmt-studio {version}</h2>
<p>Desktop motion authoring: load BVH clips, view them on a 3D skeleton and generate stylised transitions
with RSMT networks running on Modular's MAX engine.</p>
<h3>Licences</h3>
<ul>
<li><b>rsmt-studio code</b>: Apache-2.0.</li>
<li><b>Shipped model assets</b> (weights, style bank, default scene) are derived from the Bandai-Namco-Research
Motion dataset: <b>&copy; 2022 Bandai Namco Research Inc., CC BY-NC 4.0</b> (non-commercial use only;
see assets/LICENSE-ASSETS.md and https://creativecommons.org/licenses/by-nc/4.0/).</li>
<li>The 100STYLE dataset, when you open it, is &copy; Ian Mason et al., CC BY 4.0.</li>
</ul>
<h3>Built with</h3>
<ul>
<li>Qt 6 and Qt for Python (PySide6) &mdash; LGPL-3.0</li>
<li>PyOpenGL &mdash; BSD</li>
<li>NumPy, pandas &mdash; BSD-3-Clause</li>
<li>bvhio, pyqtgraph, platformdirs &mdash; MIT</li>
<li>safetensors &mdash; Apache-2.0</li>
<li>Modular MAX &mdash; MAX Platform Software License (see the <i>max</i> package)</li>
<li>Mesa (software OpenGL used for headless runs) &mdash; MIT</li>
</ul>
<p>Method: Tang et al., <i>RSMT: Real-time Stylized Motion Transition for Characters</i>, SIGGRAPH 2023.</p>
"""


def about_dialog(parent: QWidget | None, version: str) -> QDialog:
    """Modeless About dialog; the caller shows it."""
    dlg = QDialog(parent)
    dlg.setWindowTitle("About rsmt-studio")
    text = QTextBrowser()
    text.setOpenExternalLinks(True)
    text.setHtml(ABOUT_HTML.format(version=version))
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
    buttons.rejected.connect(dlg.close)
    lay = QVBoxLayout(dlg)
    lay.addWidget(text)
    lay.addWidget(buttons)
    dlg.resize(560, 520)
    return dlg


@dataclass
class ReportedError:
    title: str
    message: str


class ErrorReporter:
    """Shows problems in a non-modal dialog (the app keeps running; tests never hang on exec()).

    ``show_dialogs=False`` or a custom ``sink`` makes it injectable; every report is kept in ``reports``.
    """

    def __init__(self, parent: QWidget | None = None, show_dialogs: bool = True,
                 sink: Callable[[ReportedError], None] | None = None) -> None:
        self.parent = parent
        self.show_dialogs = show_dialogs
        self.sink = sink
        self.reports: list[ReportedError] = []
        self.last_dialog: QMessageBox | None = None
        self._pending: list[str] = []

    def report(self, title: str, message: str) -> None:
        err = ReportedError(title, message)
        self.reports.append(err)
        if self.sink is not None:
            self.sink(err)
        if not self.show_dialogs:
            return
        box = self.last_dialog
        if box is not None and box.isVisible():
            # One dialog per burst (e.g. a folder of broken files): count them, list them all in the details.
            self._pending.append(message)
            box.setText(f"{len(self._pending)} problems; the latest:\n{message}")
            box.setDetailedText("\n".join(self._pending))
            return
        self._pending = [message]
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self.parent)
        box.setModal(False)
        box.show()
        self.last_dialog = box
