"""The HTML page `dvc plots show` and `dvc plots diff` fill, with Vega, Vega-Lite and Vega-Embed inside it.

DVC's own page loads those three libraries from a CDN, so offline its interactive plots (loss, accuracy,
confusion, ROC) stay blank. `.dvc/config` sets DVC's ``plots.html_template`` to this page instead
(reports/plots_template.html, written by stage plots_template, not committed): DVC's page with the libraries
bundled by vl-convert-python's ``javascript_bundle`` (Vega-Lite of the 5 line DVC's plot templates are written
for), and no ``{scripts}`` placeholder, so that DVC adds no CDN address. DVC replaces ``{refresh_tag}`` and
``{plot_divs}``; each plot's div then calls ``vegaEmbed``, which the bundle defines.
"""

VEGA_LITE = "5.21"  # the newest Vega-Lite 5 vl-convert ships; DVC's templates declare the v5 schema

PAGE = """<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <meta charset="utf-8">
    <title>DVC Plot</title>
    <script>
BUNDLE
    </script>
    <style>
        table {
            border-spacing: 15px;
        }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def page() -> str:
    """The page, Vega, Vega-Lite and Vega-Embed inline (they set window.vegaEmbed, vega and vegaLite)."""
    import vl_convert

    bundle = vl_convert.javascript_bundle(vl_version=VEGA_LITE).replace("</script", "<\\/script")
    return PAGE.replace("BUNDLE", bundle)
