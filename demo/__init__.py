"""voxflow studio, the Gradio demo page (`voxflow demo`): see `demo.app.build_app` and `demo/README.md`.

Gradio is an optional dependency (`pip install 'voxflow[demo]'`); import `demo.app` only when serving.
"""
