"""``steepest lab``: a local web page that watches and steers gradient descent while it runs.

The page talks to a small server (:mod:`steepest.lab.server`, Starlette + uvicorn, the ``lab``
extra) through a JSON API; training runs in one background thread (:mod:`steepest.lab.engine`) that
calls the library's own :func:`steepest.train` and listens to it through :class:`LabListener` —
the lab adds no training loop of its own.
"""
