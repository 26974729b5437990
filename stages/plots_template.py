"""Stage plots_template: the page DVC's plots commands fill (.dvc/config: plots.html_template), with Vega,
Vega-Lite and Vega-Embed inside it, so that every plot draws offline → reports/plots_template.html."""

import sys

from signdigits.errors import exit_code
from signdigits.files import write_outputs
from signdigits.plotpage import page


def main():
    write_outputs({"reports/plots_template.html": page()})


if __name__ == "__main__":
    sys.exit(exit_code(main))
