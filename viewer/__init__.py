"""rsmt_studio.viewer: OpenGL skeleton rendering and the orbit camera (Qt + OpenGL; no model code).

PyOpenGL checks glGetError after every call by default, which costs more CPU than our whole frame;
it is switched off unless RSMT_GL_DEBUG=1. This must happen before anything imports OpenGL.GL.
"""

import os as _os

import OpenGL as _OpenGL

if _os.environ.get("RSMT_GL_DEBUG", "") not in ("1", "true", "yes"):
    _OpenGL.ERROR_CHECKING = False
    _OpenGL.ERROR_LOGGING = False
