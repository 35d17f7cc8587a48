package shopbridge

import _ "embed"

// The installer's and owner's guide, in English and Russian, built into the
// binary so the console can show it on a shop PC without internet or a
// copy of the repository.
var (
	//go:embed README.md
	GuideEN string
	//go:embed README.ru.md
	GuideRU string
)
