"""One report, read and shown: its JSON schema (:mod:`~sandbox.report.json_format`), the view
models shared by the terminal and the HTML page (:mod:`~sandbox.report.views`), the page itself
(:mod:`~sandbox.report.html`), the evidence bundle (:mod:`~sandbox.report.evidence`) and the
one sanitiser of untrusted text (:mod:`~sandbox.report.sanitize`).

The registry of output formats (JSON, SARIF, JUnit, Markdown) is
:mod:`sandbox.gate.formats`: those render gate results, and a report never imports the gate.
"""
