"""One way to get the embedder: `embedder_from`, kept by one EmbedderSource per owner (the
app, a worker pool) and loaded once however many threads ask."""

import threading

import pytest
from sqlalchemy import Engine

import service.store
from retrieval.embedding import Embedder, HashingEmbedder
from service.app import create_app
from service.jobs.handlers import JobContext
from service.jobs.worker import Worker
from service.settings import Settings
from service.store import EmbedderSource, ParserSource


def test_a_source_loads_the_model_once_for_all_threads(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[Embedder] = []

    def load(_settings: Settings) -> Embedder:
        loads.append(HashingEmbedder(8))
        return loads[-1]

    monkeypatch.setattr(service.store, "embedder_from", load)
    source = EmbedderSource(settings)
    got: list[Embedder] = []
    threads = [threading.Thread(target=lambda: got.append(source())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1
    assert all(embedder is loads[0] for embedder in got)


def test_the_app_keeps_one_source(engine: Engine, settings: Settings) -> None:
    app = create_app(settings, engine=engine, worker=False)
    assert isinstance(app.state.embedder, EmbedderSource)
    assert app.state.embedder() is app.state.embedder()


def test_workers_given_a_source_share_it(engine: Engine, settings: Settings) -> None:
    source = EmbedderSource(settings)
    first = Worker(engine, settings, embedder=source)
    second = Worker(engine, settings, embedder=source)
    assert first.embedder() is second.embedder()
    assert Worker(engine, settings).embedder is not source


def test_a_job_gets_the_workers_embedder(engine: Engine, settings: Settings) -> None:
    worker = Worker(engine, settings)
    context = JobContext(engine, settings, "test", 1, worker.embedder, worker.parser)
    assert context.embedder() is worker.embedder()


def test_the_app_and_its_worker_share_one_sense_parser(engine: Engine, settings: Settings) -> None:
    app = create_app(settings, engine=engine, worker=False)
    assert isinstance(app.state.parser, ParserSource)
    assert app.state.parser() is app.state.parser()
    worker = Worker(engine, settings, parser=app.state.parser)
    context = JobContext(engine, settings, "test", 1, worker.embedder, worker.parser)
    assert context.parser() is app.state.parser()
