"""`LocalRestClient`: the parts of `tinker.RestClient` the harness uses, answered locally.

`get_server_capabilities` lists the embedded models (local model folders are served too, but
cannot be listed); `get_external_weights_urls` maps each file of a `save_weights_external`
export to a `file://` URL, in the SDK's `ExternalWeightsUrlsResponse` shape, so the download
code is the same for both services (`urllib.request.urlopen` reads file:// URLs).
"""

from __future__ import annotations

from harness.tinker_local import futures, store


class LocalRestClient:
    def __init__(self, _holder=None, *, base_url: str | None = None, api_key: str | None = None) -> None:
        pass

    def get_server_capabilities(self):
        return futures.done(server_capabilities())

    def get_external_weights_urls(self, tinker_path: str):
        return futures.submit(external_weights_urls, tinker_path)

    def list_checkpoints(self, training_run_id: str):
        return futures.submit(checkpoints, training_run_id)

    def get_telemetry(self):
        return None


def server_capabilities():
    """Every embedded model, trainable and sampleable; its context length once it has been converted."""
    import json

    from tinker import types

    from harness import paths
    from harness.models import EMBEDDED

    models = []
    for key in sorted(EMBEDDED):
        config = paths.models_root() / key / "model" / "config.json"
        context = json.loads(config.read_text(encoding="utf-8"))["max_position_embeddings"] if config.is_file() else None
        models.append(types.SupportedModel(model_name=f"embedded:{key}", max_context_length=context,
                                           trainable=True, sampleable=True))
    return types.GetServerCapabilitiesResponse(supported_models=models)


def external_weights_urls(tinker_path: str):
    import datetime

    from tinker import types

    parsed = store.parse(tinker_path)
    if parsed.kind != "external_weights":
        raise ValueError("get_external_weights_urls only accepts external weights checkpoints "
                         f"({store.SCHEME}<run_id>/external_weights/<name>), got {tinker_path!r}")
    folder = store.local_path(tinker_path)
    urls = {str(p.relative_to(folder)): p.resolve().as_uri() for p in sorted(folder.rglob("*")) if p.is_file()}
    expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=3650)
    return types.ExternalWeightsUrlsResponse(urls=urls, expires=expires)


def checkpoints(training_run_id: str):
    """Every local checkpoint of a run, in the SDK's CheckpointsListResponse shape."""
    import datetime

    from tinker import types

    kinds = {"state": "training", "weights": "sampler", "external_weights": "external"}
    found = []
    run = store.root() / store.check_name(training_run_id, "run id")
    for kind, checkpoint_type in kinds.items():
        for folder in sorted((run / kind).glob("*")) if (run / kind).is_dir() else []:
            if not (folder / store.SIDECAR).is_file():
                continue
            sidecar = store.read_sidecar(folder)
            found.append(types.Checkpoint(
                checkpoint_id=f"{kind}/{folder.name}", checkpoint_type=checkpoint_type,
                time=datetime.datetime.fromtimestamp(sidecar["created"], datetime.timezone.utc),
                tinker_path=store.LocalPath(training_run_id, kind, folder.name).uri,
                size_bytes=sum(p.stat().st_size for p in folder.iterdir() if p.is_file()),
                user_metadata=sidecar.get("user_metadata") or None))
    return types.CheckpointsListResponse(checkpoints=found)
