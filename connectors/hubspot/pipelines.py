"""HubSpot pipelines: the labels of the stage ids that records carry in `dealstage`."""

from __future__ import annotations

from dataclasses import dataclass

from connectors.kit.http import ProviderSession


@dataclass(frozen=True)
class PipelineStageLabels:
    """Stage id -> stage label across every pipeline of an object type (`GET /crm/v3/pipelines/{objectType}`).

    HubSpot stage ids are unique across an object type's pipelines: the default pipeline's are fixed words
    (`closedwon`), custom ones numbers; labels are only unique within one pipeline."""

    object_type: str

    async def read(self, session: ProviderSession) -> dict[str, str]:
        body = await session.get_json(f"/crm/v3/pipelines/{self.object_type}")
        return {
            str(stage["id"]): str(stage["label"])
            for pipeline in body.get("results", [])
            for stage in pipeline.get("stages", [])
        }
