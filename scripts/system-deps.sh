#!/usr/bin/env bash
# System packages the tests need: Debian's Chromium (browser tests), LibreOffice Writer and Calc (rendering the
# documents and the report workbook) and poppler-utils (reading the rendered pages back).
# Installed only where missing, so a clean machine gets them and a prepared one loses no time.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v soffice >/dev/null 2>&1 || need+=(libreoffice-writer-nogui)
[ -e /usr/lib/libreoffice/program/libsclo.so ] || need+=(libreoffice-calc-nogui)  # the report workbook
command -v pdftotext >/dev/null 2>&1 || need+=(poppler-utils)  # reading rendered PDFs
fc-list 2>/dev/null | grep -qi dejavu || need+=(fonts-dejavu-core)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing system packages: ${need[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
