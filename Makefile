# Chatto in C — one non-recursive Makefile. `make help` lists the targets.
#
# Flavours build into their own directories so objects never mix:
#   build/        -O2 -g (default)
#   build/asan/   ASan + UBSan        (make asan, make test-asan)
#   build/tsan/   ThreadSanitizer     (make tsan)

VERSION   := $(shell cat VERSION)
B         ?= build
CC        ?= cc
PKGS      := libmicrohttpd libnats libsodium libcjson inih nettle hogweed gmp libcurl vips sqlite3
# -isystem: warnings in other projects' headers (GLib's, under libvips) are theirs, not ours
PKG_CFLAGS := $(patsubst -I%,-isystem %,$(shell pkg-config --cflags $(PKGS) 2>/dev/null))
# libvips is not linked: lib/assets/resize.c loads it on the first resize (its hundred libraries cost RSS in every
# process that never resizes an image); only its headers are used at build time
PKG_LIBS   := $(shell pkg-config --libs $(filter-out vips,$(PKGS)) 2>/dev/null) -lwslay -lpthread -lm
VIPS_LIBS  := $(shell pkg-config --libs vips 2>/dev/null)

WARN      := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wvla -Wundef \
             -Wno-missing-field-initializers
OPT       ?= -O2 -g
CFLAGS    += -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) $(SAN) -Ilib -Iserver -I$(B)/gen $(PKG_CFLAGS) -MMD -MP
LDFLAGS   += $(SAN)

LIB_SRC    := $(sort $(wildcard lib/*/*.c))
SERVER_SRC := $(sort $(wildcard server/*.c server/*/*.c))
UNIT_SRC   := $(sort $(wildcard test/unit/test_*.c))
LIB_OBJ    := $(LIB_SRC:%.c=$(B)/obj/%.o)
SERVER_OBJ := $(SERVER_SRC:%.c=$(B)/obj/%.o)
UNIT_BIN   := $(UNIT_SRC:test/unit/%.c=$(B)/test/%)
FUZZ_NAMES := $(sort $(patsubst test/fuzz/%.c,%,$(wildcard test/fuzz/fuzz_*.c)))
APP_OBJ    := $(filter-out $(B)/obj/server/main.o,$(SERVER_OBJ))
GENDOC     := $(B)/gendoc
OBJCAT     := $(B)/objcat
IMGTOOL    := $(B)/imgtool
S3SIGN     := $(B)/s3sign
PUSHTOOL   := $(B)/pushtool

ifeq ($(V),1)
Q :=
else
Q := @
endif

PREFIX  ?= /usr/local
DESTDIR ?=

.PHONY: bench all run test test-unit test-integration asan test-asan tsan test-tsan clean install deps deps-test help \
        check-docs docs check-headers cluster bench-cluster bench-scale bench-search fuzz fuzz-build fuzz-merge

all: $(B)/chatto

help:
	@echo "Targets:"
	@echo "  all               build build/chatto (default)"
	@echo "  run               install missing Debian packages, build, run with embedded NATS (data in ./data) on"
	@echo "                    127.0.0.1 only (BIND=0.0.0.0 for the network; ARGS=\"--flag value\" for more)"
	@echo "  test              install missing packages, build, run unit + integration tests"
	@echo "  test-unit         C unit tests (cmocka)"
	@echo "  test-integration  Python integration tests against the real binary and a real nats-server"
	@echo "  asan / test-asan  build / test with AddressSanitizer + UndefinedBehaviorSanitizer"
	@echo "  tsan / test-tsan  build / test (unit + chat, realtime, stall, cluster suites) with ThreadSanitizer"
	@echo "  fuzz              libFuzzer + ASan/UBSan harnesses (test/fuzz/) for FUZZ_TIME seconds each (default 60;"
	@echo "                    FUZZ=fuzz_ws for one); new inputs in build/fuzz/corpus, crashes in build/fuzz/crashes"
	@echo "  fuzz-merge        fold build/fuzz/corpus into the committed seeds (test/fuzz/corpus), minimised"
	@echo "  bench             HTTP floor vs nginx, idle HTTP/WebSocket memory, posts vs raw JetStream, fan-out, file"
	@echo "                    upload/download vs a raw object-store client and RSS during 10 uploads (wrk, nginx, node),"
	@echo "                    message search at 300k messages (index build, size, query p50/p99, post-to-searchable lag)"
	@echo "  bench-search      the message-search benchmark alone (CHATTO_BENCH_SEARCH_N=300000 messages)"
	@echo "  bench-scale       one process at 100k and 1M messages (ready time, RSS, history pages) and 10,000 users"
	@echo "  bench-cluster     cluster bootstrap races, then post and fan-out throughput with 1 vs 3 processes on a 3-node NATS cluster"
	@echo "  cluster           run 3 NATS nodes, 3 chatto processes and nginx in front; prints the URL"
	@echo "  deb               build build/chatto_<version>_<arch>.deb (dpkg-deb; hardened build in build/deb-build)"
	@echo "  test-package      lintian, unit checks, install/run/purge in a throwaway root, chatto.service under systemd"
	@echo "  docs              regenerate etc/chatto.ini and the man pages from the key table"
	@echo "  check-docs        fail if etc/chatto.ini or the man pages are out of date"
	@echo "  check-headers     compile every header on its own"
	@echo "  install           install into \$$(DESTDIR)\$$(PREFIX)"
	@echo "  clean             remove build/"
	@echo "Variables: V=1 (verbose), B=<build dir>, TESTS=<pattern> (integration test filter)"

$(B)/gen/version.h: VERSION
	@mkdir -p $(@D)
	$(Q)printf '#pragma once\n#define CHATTO_VERSION "%s"\n' "$(VERSION)" > $@.tmp && mv $@.tmp $@

$(B)/obj/%.o: %.c $(B)/gen/version.h
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC    $<")
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(B)/libchatto.a: $(LIB_OBJ)
	@$(if $(Q),echo "  AR    $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(B)/chatto: $(SERVER_OBJ) $(B)/libchatto.a
	@$(if $(Q),echo "  LD    $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(SERVER_OBJ) $(B)/libchatto.a $(PKG_LIBS)

$(B)/test/%: test/unit/%.c $(B)/libchatto.a $(B)/gen/version.h
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC    $<")
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(B)/libchatto.a $(PKG_LIBS) -lcmocka

.SECONDARY: $(B)/obj/test/fuzz/harness_server.o
# a fuzz harness: the whole server but main(), instrumented for libFuzzer (only built in the fuzz flavour)
$(B)/fuzz/%: test/fuzz/%.c $(B)/obj/test/fuzz/harness_server.o $(APP_OBJ) $(B)/libchatto.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD    $@")
	$(Q)$(CC) $(CFLAGS) -Itest/fuzz -fsanitize=fuzzer -o $@ $< $(B)/obj/test/fuzz/harness_server.o $(APP_OBJ) \
	    $(B)/libchatto.a $(PKG_LIBS)

# the object-store code as a command, for the NATS object-store interoperability tests
$(OBJCAT): test/tools/objcat.c $(B)/libchatto.a
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(B)/libchatto.a $(PKG_LIBS)

# test images made and measured with libvips, for the resize tests and benchmark
$(IMGTOOL): test/tools/imgtool.c
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(PKG_LIBS) $(VIPS_LIBS)

# lib/s3's SigV4 signer as a command, compared with the AWS SDK's signer by the S3 integration test
$(S3SIGN): test/tools/s3sign.c $(B)/libchatto.a
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(B)/libchatto.a $(PKG_LIBS)

# lib/push as a command, for the Web Push test against Node's crypto and a loopback push service
$(PUSHTOOL): test/tools/pushtool.c $(B)/libchatto.a
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(B)/libchatto.a $(PKG_LIBS)

$(GENDOC): test/tools/gendoc.c $(B)/libchatto.a
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(B)/libchatto.a $(PKG_LIBS)

$(B)/bench/jspub: bench/jspub.c
	@mkdir -p $(@D)
	$(Q)$(CC) -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -o $@ $< $(PKG_LIBS)

$(B)/bench/evpub: bench/evpub.c
	@mkdir -p $(@D)
	$(Q)$(CC) -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -o $@ $< $(PKG_LIBS)

$(B)/bench/fanout: bench/fanout.c
	@mkdir -p $(@D)
	$(Q)$(CC) -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -o $@ $< -lpthread

# Targets that install packages first build in a second make: the pkg-config flags above are read when a make
# starts, so a make that has just installed the libraries must not be the one that compiles against them.
bench: deps-test
	$(Q)$(MAKE) --no-print-directory all $(B)/bench/jspub $(B)/bench/fanout $(B)/bench/evpub $(IMGTOOL)
	$(Q)CHATTO_TEST_BUILD=$(abspath $(B)) python3 bench/http_bench.py
	$(Q)CHATTO_TEST_BUILD=$(abspath $(B)) python3 bench/run.py
	$(Q)CHATTO_TEST_BUILD=$(abspath $(B)) python3 bench/realtime.py
	$(Q)CHATTO_TEST_BUILD=$(abspath $(B)) python3 bench/assets.py
	$(Q)CHATTO_TEST_BUILD=$(abspath $(B)) python3 bench/search.py

bench-search: deps-test
	$(Q)$(MAKE) --no-print-directory all $(B)/bench/evpub
	$(Q)CHATTO_TEST_BUILD=$(abspath $(B)) python3 bench/search.py

bench-scale: deps-test
	$(Q)$(MAKE) --no-print-directory all $(B)/bench/evpub $(B)/bench/fanout
	$(Q)CHATTO_TEST_BUILD=$(abspath $(B)) python3 bench/scale.py

bench-cluster: deps-test
	$(Q)$(MAKE) --no-print-directory all $(B)/bench/fanout
	$(Q)CHATTO_TEST_BUILD=$(abspath $(B)) python3 bench/bootstrap.py
	$(Q)python3 bench/cluster.py

cluster: deps-test
	$(Q)$(MAKE) --no-print-directory all
	$(Q)python3 test/integration/cluster.py

deps:
	@packaging/deps.sh run

deps-test:
	@packaging/deps.sh test

# a developer's server answers this machine only unless told otherwise (BIND=0.0.0.0)
BIND ?= 127.0.0.1
run: deps
	$(Q)$(MAKE) --no-print-directory all
	$(B)/chatto run --webserver-bind-address $(BIND) $(ARGS)

test: deps-test
	$(Q)$(MAKE) --no-print-directory all $(UNIT_BIN) $(OBJCAT) $(IMGTOOL) $(S3SIGN) $(PUSHTOOL)
	$(Q)$(MAKE) --no-print-directory fuzz-build
	$(Q)python3 test/run_tests.py --build $(B) --fuzz build/fuzz $(if $(TESTS),--filter '$(TESTS)')

test-unit: $(UNIT_BIN)
	$(Q)python3 test/run_tests.py --build $(B) --unit-only

test-integration: all $(OBJCAT) $(IMGTOOL) $(S3SIGN) $(PUSHTOOL)
	$(Q)python3 test/run_tests.py --build $(B) --integration-only $(if $(TESTS),--filter '$(TESTS)')

asan:
	$(Q)$(MAKE) --no-print-directory B=build/asan OPT="-O1 -g -fno-omit-frame-pointer" \
	    SAN="-fsanitize=address,undefined -fno-sanitize-recover=all" all build/asan/objcat build/asan/imgtool build/asan/s3sign build/asan/pushtool $(addprefix build/asan/test/,$(notdir $(UNIT_BIN)))

test-asan: deps-test
	$(Q)$(MAKE) --no-print-directory asan
	$(Q)ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    python3 test/run_tests.py --build build/asan --sanitizer $(if $(TESTS),--filter '$(TESTS)')

tsan:
	$(Q)$(MAKE) --no-print-directory B=build/tsan CC=clang OPT="-O1 -g" SAN="-fsanitize=thread" \
	    all $(addprefix build/tsan/test/,$(notdir $(UNIT_BIN)))

# ThreadSanitizer over the unit tests and the suites where threads meet: chat, realtime, the stall tests and the
# cluster. test/tsan.supp silences only libraries we do not own (each entry says why).
TSAN_SUITES := 27_follower,45_stall,60_chat,61_cold,62_notify,70_realtime,75_websocket,85_cluster
test-tsan: deps-test
	$(Q)$(MAKE) --no-print-directory tsan
	$(Q)TSAN_OPTIONS="suppressions=$(CURDIR)/test/tsan.supp halt_on_error=0 second_deadlock_stack=1 history_size=4" \
	    python3 test/run_tests.py --build build/tsan --sanitizer --filter '$(if $(TESTS),$(TESTS),$(TSAN_SUITES))' \
	        $(if $(TESTS),,--all-unit)

# the fuzz flavour: clang, libFuzzer coverage, ASan + UBSan (any report aborts, so libFuzzer keeps the input)
FUZZ_TIME ?= 60
fuzz-build:
	$(Q)$(MAKE) --no-print-directory B=build/fuzz CC=clang OPT="-O1 -g -fno-omit-frame-pointer" \
	    SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fsanitize=fuzzer-no-link" \
	    $(addprefix build/fuzz/fuzz/,$(FUZZ_NAMES))

fuzz: deps-test
	$(Q)$(MAKE) --no-print-directory fuzz-build
	$(Q)python3 test/fuzz/fuzz.py run --build build/fuzz --time $(FUZZ_TIME) $(FUZZ)

fuzz-merge:
	$(Q)$(MAKE) --no-print-directory fuzz-build
	$(Q)python3 test/fuzz/fuzz.py merge --build build/fuzz $(FUZZ)

docs: $(GENDOC)
	$(Q)$(GENDOC) ini > etc/chatto.ini
	$(Q)$(GENDOC) man1 < man/chatto.1.in > man/chatto.1
	$(Q)$(GENDOC) man5 < man/chatto.ini.5.in > man/chatto.ini.5
	@echo "regenerated etc/chatto.ini man/chatto.1 man/chatto.ini.5"

check-docs: $(GENDOC)
	$(Q)$(GENDOC) ini | diff -u etc/chatto.ini - || (echo "etc/chatto.ini is stale: run make docs"; exit 1)
	$(Q)$(GENDOC) man1 < man/chatto.1.in | diff -u man/chatto.1 - || (echo "man/chatto.1 is stale: run make docs"; exit 1)
	$(Q)$(GENDOC) man5 < man/chatto.ini.5.in | diff -u man/chatto.ini.5 - || (echo "man/chatto.ini.5 is stale: run make docs"; exit 1)

check-headers:
	$(Q)for h in $$(find lib server -name '*.h'); do \
	    echo "#include \"$$h\"" | $(CC) $(filter-out -MMD -MP,$(CFLAGS)) -I. -x c -fsyntax-only - || exit 1; \
	    done; echo "headers OK"

install: all
	install -D -m 0755 $(B)/chatto $(DESTDIR)$(PREFIX)/bin/chatto
	install -D -m 0644 man/chatto.1 $(DESTDIR)$(PREFIX)/share/man/man1/chatto.1
	install -D -m 0644 man/chatto.ini.5 $(DESTDIR)$(PREFIX)/share/man/man5/chatto.ini.5
	install -D -m 0644 docs/api.md $(DESTDIR)$(PREFIX)/share/doc/chatto/api.md

clean:
	rm -rf build

# packaging targets (deb, test-package) live beside the packaging files
-include packaging/packaging.mk

-include $(LIB_OBJ:.o=.d) $(SERVER_OBJ:.o=.d) $(B)/obj/test/fuzz/harness_server.d
