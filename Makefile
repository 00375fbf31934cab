# radshare - top-level build.
#   make            build/radshare
#   make check      install missing Debian packages, build, run every test (SAN=1: under ASan+UBSan)
#   make demo       install, build, show radshare on a sample study
#   make fuzz       build and run the libFuzzer targets for a bounded time (FUZZ_SECONDS)
#   make bench      the benchmarks in bench/ (by hand; prints ratios against the peers)

CC      ?= cc
SAN     ?= 0
PKGS    := zlib sqlite3 libssl libcrypto libjpeg charls libopenjp2 libpng libmicrohttpd libsodium libcurl libqrencode
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wno-unused-parameter -Werror=implicit-function-declaration \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lz -lsqlite3 -lssl -lcrypto -ljpeg -lcharls -lopenjp2 -lpng16 -lmicrohttpd -lsodium -lcurl -lqrencode) -lpthread -lm

ifeq ($(SAN),1)
BUILD   := build/san
CFLAGS  += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
else
BUILD   := build
endif

LIB_SRC  := $(filter-out src/cli/%,$(shell find src -name '*.c' | sort))
CLI_SRC  := $(shell find src/cli -name '*.c' | sort)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all deps check demo fuzz bench clean
all: $(BUILD)/radshare

# the viewer (src/web/) embedded in the binary: tools/gen_web_assets.py -> $(BUILD)/gen/web_assets.c
WEB_SRC  := $(shell find src/web -type f 2>/dev/null | sort)
LIB_OBJ  += $(BUILD)/obj/$(BUILD)/gen/web_assets.o
$(BUILD)/gen/web_assets.c: tools/gen_web_assets.py $(WEB_SRC) $(wildcard src/web)
	@mkdir -p $(dir $@)
	$(Q)python3 tools/gen_web_assets.py src/web $@
$(BUILD)/obj/$(BUILD)/gen/web_assets.o: CFLAGS += -Isrc

Q := $(if $(V),,@)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libradshare.a: $(LIB_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/radshare: $(CLI_OBJ) $(BUILD)/libradshare.a
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libradshare.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -Isrc $< $(BUILD)/libradshare.a $(LDLIBS) -o $@

deps:
	@tools/deps.sh check

check: deps
	$(MAKE) --no-print-directory all-tests
	@BUILD=$(BUILD) SAN=$(SAN) tests/run.sh

.PHONY: all-tests
all-tests: $(BUILD)/radshare $(UNIT_BIN)

demo:
	@tools/deps.sh demo
	@$(MAKE) --no-print-directory all
	@tools/demo.sh $(BUILD)/radshare

fuzz:
	@tools/deps.sh fuzz
	@FUZZ_SECONDS=$${FUZZ_SECONDS:-60} fuzz/run.sh

bench:
	@tools/deps.sh bench
	@$(MAKE) --no-print-directory all
	@bench/parse

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
