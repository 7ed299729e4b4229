"""Campaigns: checking a campaign file across layers, the loop, resuming, promotion and replays."""

from htflow.campaign.loop import Campaign
from htflow.campaign.validation import check, load_config, parse_config

__all__ = ["Campaign", "check", "load_config", "parse_config"]
