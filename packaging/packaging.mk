# SPDX-License-Identifier: MIT
# Debian package targets, included by the top-level Makefile (which defines B, GENDOC and `all`).
#   make deb           $(B)/chatto_<version>_<arch>.deb (packaging/build-deb.sh says why dpkg-deb, not dh)
#   make test-package  lintian, the systemd unit checks and an install/run/remove/purge cycle in a
#                      throwaway root (test/integration/90_package_test.py; `make test` runs it too)

DEB_VERSION := $(shell dpkg-parsechangelog -l packaging/debian/changelog -S Version 2>/dev/null)
DEB_ARCH    := $(shell dpkg --print-architecture 2>/dev/null)
DEB_FILE    := $(B)/chatto_$(DEB_VERSION)_$(DEB_ARCH).deb
# the packaged binary is built with Debian's hardening flags (fortify, stack protector, relro, bindnow),
# in a build directory of its own so its objects never mix with the plain build's
DEB_BUILD   := $(B)/deb-build

.PHONY: deb test-package

deb: $(GENDOC)
	$(Q)eval "$$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --export=sh)" && \
	    CFLAGS="$$CFLAGS $$CPPFLAGS" $(MAKE) --no-print-directory B=$(DEB_BUILD) $(DEB_BUILD)/chatto
	$(Q)packaging/build-deb.sh $(DEB_BUILD)/chatto $(GENDOC) $(B) >/dev/null
	@echo "  DEB   $(DEB_FILE)"

test-package: deps-test
	$(Q)$(MAKE) --no-print-directory deb
	$(Q)python3 test/run_tests.py --build $(B) --integration-only --filter 90_package
