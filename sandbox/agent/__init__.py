"""The in-container agent: phase driver, survivor watch, recorder.

This subpackage runs *inside* the sandbox only, as root (never as the candidate
uid), under the image's own interpreter. It uses the standard library and psutil
only, and host-side code imports nothing of it but :mod:`sandbox.agent.protocol`
(paths, the plan's shape, the messages): the image build copies these files to
``/usr/local/lib/devtools/lib/dtagent``.

Protocol with the host (``docker exec``):
  ``agent setup``            prepare HOME (honeytokens included), the venv, the trace
                             directory and the network sinkhole (sinkhole/)
  ``agent phase NAME``       run one phase under strace; JSON lines on stdout
  ``agent run [--collect] PHASES…``  several phases in one exec (``--collect``: then
                             a ``collect`` message and the tar, as ``agent collect``)
  ``agent collect``          stop the sinkhole; tar of the output directory on stdout
  ``agent probe``            what a candidate-uid process sees (doctor)
"""

AGENT_VERSION = "1"
