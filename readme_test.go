package shopbridge_test

import (
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The README and its Russian twin are kept in step: the same sections in
// the same order, and every command, flag, setting, address and document
// named in one is named in the other. A section marker is an HTML comment
// (`<!-- section: install -->`) before each heading, since the headings
// themselves are in two languages.
var (
	sectionRe = regexp.MustCompile(`<!-- section: ([a-z-]+) -->`)
	// code spans and fenced blocks: what a reader types or looks for.
	fenceRe = regexp.MustCompile("(?s)```[a-z]*\n(.*?)```")
	spanRe  = regexp.MustCompile("`([^`\n]+)`")
	// shopbridge and its subcommand (and a sub-subcommand such as
	// "outbox list"), as typed.
	commandRe = regexp.MustCompile(`\bshopbridge ([a-z]+)(?: (list|retry))?\b`)
	flagRe    = regexp.MustCompile(`(?:^|[\s(])(--[a-z][a-z-]*)`)
	urlRe     = regexp.MustCompile(`https?://[^\s)*<>'"&]+`)
	docRe     = regexp.MustCompile(`\]\((docs/[a-z-]+\.md)`)
	// a setting key as a code span: lower case words joined by '-'.
	keyRe = regexp.MustCompile(`^[a-z]+(?:-[a-z]+)*$`)
)

type readme struct {
	sections                    []string
	commands, flags, urls, docs map[string]bool
	keys                        map[string]bool
}

func readReadme(t *testing.T, path string) readme {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	r := readme{commands: map[string]bool{}, flags: map[string]bool{}, urls: map[string]bool{}, docs: map[string]bool{}, keys: map[string]bool{}}
	for _, m := range sectionRe.FindAllStringSubmatch(text, -1) {
		r.sections = append(r.sections, m[1])
	}
	var code []string
	for _, m := range fenceRe.FindAllStringSubmatch(text, -1) {
		// Comments in the blocks are prose, in the file's own language.
		for _, line := range strings.Split(m[1], "\n") {
			if i := strings.Index(line, "#"); i >= 0 {
				line = line[:i]
			}
			code = append(code, line)
		}
	}
	prose := fenceRe.ReplaceAllString(text, "")
	for _, m := range spanRe.FindAllStringSubmatch(prose, -1) {
		code = append(code, m[1])
		if keyRe.MatchString(m[1]) {
			r.keys[m[1]] = true
		}
	}
	for _, c := range code {
		for _, m := range commandRe.FindAllStringSubmatch(c, -1) {
			r.commands[strings.TrimSpace(m[1]+" "+m[2])] = true
		}
		for _, m := range flagRe.FindAllStringSubmatch(c, -1) {
			r.flags[m[1]] = true
		}
		for _, m := range regexp.MustCompile(`^\s*([a-z-]+) = `).FindAllStringSubmatch(c, -1) {
			r.keys[m[1]] = true
		}
	}
	for _, m := range urlRe.FindAllString(text, -1) {
		r.urls[strings.TrimRight(m, ".,")] = true
	}
	for _, m := range docRe.FindAllStringSubmatch(text, -1) {
		r.docs[m[1]] = true
	}
	return r
}

func missing(from, in map[string]bool) []string {
	var out []string
	for k := range from {
		if !in[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func TestReadmesInStep(t *testing.T) {
	en, ru := readReadme(t, "README.md"), readReadme(t, "README.ru.md")
	if len(en.sections) < 10 {
		t.Fatalf("README.md has %d section markers, want the installer's and owner's sections marked: %v", len(en.sections), en.sections)
	}
	if !slices.Equal(en.sections, ru.sections) {
		t.Errorf("sections differ:\nREADME.md    %v\nREADME.ru.md %v", en.sections, ru.sections)
	}
	for _, c := range []struct {
		what   string
		en, ru map[string]bool
	}{
		{"commands", en.commands, ru.commands},
		{"flags", en.flags, ru.flags},
		{"settings and other names in code", en.keys, ru.keys},
		{"addresses", en.urls, ru.urls},
	} {
		if len(c.en) == 0 {
			t.Errorf("README.md names no %s: the parser found nothing", c.what)
		}
		if m := missing(c.en, c.ru); len(m) > 0 {
			t.Errorf("%s in README.md but not in README.ru.md: %q", c.what, m)
		}
		if m := missing(c.ru, c.en); len(m) > 0 {
			t.Errorf("%s in README.ru.md but not in README.md: %q", c.what, m)
		}
	}
	// The Russian guide links the documents of its own sections; the
	// English one may list more (the developers' table), never fewer.
	if m := missing(ru.docs, en.docs); len(m) > 0 {
		t.Errorf("documents linked from README.ru.md but not from README.md: %q", m)
	}
	for d := range en.docs {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("README.md links %s, which does not exist", d)
		}
	}
	for _, want := range []string{"make demo", "make test"} {
		for name, path := range map[string]string{"README.md": "README.md", "README.ru.md": "README.ru.md"} {
			b, _ := os.ReadFile(path)
			if !strings.Contains(string(b), want) {
				t.Errorf("%s lost the quick-start command %q", name, want)
			}
		}
	}
}

// The quick start's commands stay true: make demo and make test are
// targets of the Makefile.
func TestReadmeQuickStartTargets(t *testing.T) {
	b, err := os.ReadFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"demo", "test"} {
		if !regexp.MustCompile(`(?m)^` + target + `:`).Match(b) {
			t.Errorf("the Makefile has no %q target, which the README's quick start runs", target)
		}
	}
}
