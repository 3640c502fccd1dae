"""Serving a run's adapted model: one-off answers, merged checkpoints, an OpenAI-compatible HTTP API with
several adapters on one base model and topic routing, and a blind A/B rating page.

Entry points: `ask.answer_questions`, `merge.merge_run`, `server.serve`, `abreport.write_ab_report` and
`loadtest.run_loadtest`. FastAPI and uvicorn are imported only by the server modules.
"""
