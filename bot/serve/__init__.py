"""``python -m bot serve``: the configured backend, and the characters, over HTTP.

A machine with a GPU (a notebook host, say) runs the model; a Troupe bot elsewhere
uses it as a remote backend (``openai`` or ``api_host``), and any OpenAI client
(SillyTavern, Open WebUI, another bot) can talk to a Troupe character. Routes:

- ``POST /v1/chat/completions``: OpenAI-compatible, streaming (SSE, ``data: [DONE]``)
  or one JSON answer. ``model`` set to a character's name runs that character
  through the ChatService (:mod:`bot.serve.characters`); absent, or the raw model's
  id, is the raw model with the messages as a plain transcript (:mod:`bot.serve.raw`);
  any other name is a 404 that names what is available.
- ``POST /v1/completions``: the raw model; stop strings are enforced here whatever
  the backend does with them.
- ``GET /v1/models``: the raw model (first, with its context size as ``n_ctx``),
  then every character.
- ``POST /api``: the api_host protocol (``token`` in the body, answer in
  ``answer.content``).
- ``GET /health``: public liveness (``{"status": "ok"}`` or 503); the model name and
  details only with the token.

Every other request needs ``Authorization: Bearer <token>``; the token is generated
and logged once at start when none is configured. Binds 127.0.0.1 by default.

Modules: ``wire`` (the OpenAI request and response format), ``raw`` (the model
itself), ``turns`` (messages -> a character's turns, pure), ``characters`` (the
character route), ``server`` (auth, routing, start and stop).
"""

from __future__ import annotations

from bot.serve.characters import CONVERSATION_HEADER, Characters
from bot.serve.raw import messages_to_prompt
from bot.serve.server import RunningServer, create_app, serve, start_server
from bot.serve.turns import messages_to_conversation

__all__ = [
    "CONVERSATION_HEADER",
    "Characters",
    "RunningServer",
    "create_app",
    "messages_to_conversation",
    "messages_to_prompt",
    "serve",
    "start_server",
]
