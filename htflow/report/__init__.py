"""Reports: plots of a campaign (matplotlib's object interface, no display) and its HTML page."""

from htflow.report.html import PLOTS, campaign_plots, write_report
from htflow.report.plots import convergence_plot, learning_curve_plot
from htflow.report.view import CampaignView

__all__ = ["PLOTS", "CampaignView", "campaign_plots", "convergence_plot", "learning_curve_plot",
           "write_report"]
