"""``seq2seq-attn serve RUN_DIR``: an HTTP server (FastAPI + uvicorn) for translation and classify runs with
dynamic batching of concurrent requests (see :mod:`.app`, :mod:`.batching`, :mod:`.engines`)."""
