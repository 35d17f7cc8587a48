package crmsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"
)

// genProducts is the catalogue synthetic bills draw from.
var genProducts = []struct {
	id       int
	kind     string // product type; *_MARKED kinds get a mark
	name     string
	priceKop int64
	unit     string
	grams    bool // sold by the gram: quantity 10..100
}{
	{4183, "NORMAL", "Шу пуэр «Вековые традиции», ЧАЁК, 200 грамм, 2025 год", 1305, "Грамм", true},
	{940, "NORMAL", "Шу пуэр «Культура», ЧАЁК, 200 грамм, 2021 год", 1827, "Грамм", true},
	{2867, "NORMAL", "Син Бан Чжан Шу, 2020 год, 200 грамм", 7830, "Грамм", true},
	{9882, "NORMAL", "Veluderm (Велюдерм) L-Carnitine, L-карнитин 10%, 5 мл", 34000, "Штука", false},
	{34850, "NORMAL", "Мезобустер с осветляющим эффектом / White Lift Booster, Skinasil - 5 мл", 175700, "Штука", false},
	{15446, "NORMAL", "Кресло компьютерное Кларк велюр серый", 909300, "Штука", false},
	{354140, "NORMAL", "Лампа настольная Moderli V11277-1T Mykke", 179000, "Штука", false},
	{71001, "DIETARY_SUPPLEMENTS_MARKED", "Омега-3 Evalar, 60 капсул", 89990, "Штука", false},
	{71002, "DIETARY_SUPPLEMENTS_MARKED", "Витамин D3 2000 МЕ, 120 таблеток", 64950, "Штука", false},
	{72001, "PERFUMERY_MARKED", "Туалетная вода «Северное сияние», 50 мл", 249900, "Штука", false},
	{73001, "SHOES_MARKED", "Кроссовки беговые, размер 42", 549000, "Пара", false},
}

var genTaxrates = []string{"22%", "7%", "5%", "Без НДС"}

var genNames = []string{
	"Александр Сизов", "Максим Рудой", "Дмитрий Кузьмин", "Viktor Savelyev", "Николай Воробьев",
	"Ирина Фролова", "София Ноландт", "Даниил", "Екатерина Екимова", "Юлия Петрова", "Olga Vasilevna", "Илья",
}

// Generate returns n synthetic open bills (system DefaultSystem), the same
// for the same n and now: ids from 900001, one every 17 minutes back from
// now (so the newest are dated today in now's zone), 1 to 5 products with
// taxrate "22%", "7%", "5%" or "Без НДС", marked goods with a DataMatrix
// "mark", every third bill a delivery line (itemType 3, UUID id, no type,
// unitname "шт"), and summ the exact sum of price times quantity.
func Generate(n int, now time.Time) *Data {
	rng := rand.New(rand.NewPCG(uint64(n), 0x5eed))
	d := &Data{System: DefaultSystem, Bills: make([]json.RawMessage, 0, n)}
	for i := 0; i < n; i++ {
		id := 900001 + i
		date := now.Add(-time.Duration(i) * 17 * time.Minute).Format(time.DateTime)
		var prods [][]byte
		var total int64
		for j, np := 0, 1+rng.IntN(5); j < np; j++ {
			p := genProducts[rng.IntN(len(genProducts))]
			qty := int64(1 + rng.IntN(3))
			if p.grams {
				qty = int64(10 * (1 + rng.IntN(10)))
			}
			total += p.priceKop * qty
			var b bytes.Buffer
			fmt.Fprintf(&b, `{"id": %d, "type": %q, "price": %s, "taxrate": %s, "itemType": 1, "prodname": %s, "quantity": %d, "unitname": %s`,
				p.id, p.kind, kopText(p.priceKop), jsonString(genTaxrates[rng.IntN(len(genTaxrates))]),
				jsonString(p.name), qty, jsonString(p.unit))
			if p.kind != "NORMAL" {
				// GS1 DataMatrix: GTIN, serial, GS separator, verification key.
				mark := fmt.Sprintf("01046%09d21%s\x1d91EE10\x1d92%s", rng.IntN(1e9), randText(rng, 13), randText(rng, 44))
				fmt.Fprintf(&b, `, "mark": %s`, jsonString(mark))
			}
			b.WriteByte('}')
			prods = append(prods, b.Bytes())
		}
		if i%3 == 0 {
			price := int64(30000 + 10000*rng.IntN(5))
			total += price
			prods = append(prods, fmt.Appendf(nil,
				`{"id": %q, "price": %s, "taxrate": %s, "itemType": 3, "prodname": "Доставка", "quantity": 1, "unitname": "шт"}`,
				randUUID(rng), kopText(price), jsonString(genTaxrates[rng.IntN(len(genTaxrates))])))
		}
		name := genNames[rng.IntN(len(genNames))] + " "
		var b bytes.Buffer
		fmt.Fprintf(&b, `{"id": %d, "date": %q, "summ": %s, "number": "%d-CRM", "customer": {"id": %d, "inn": "", "kpp": "", "reg": "", "name": %s, "okpo": "", "fullname": %s, "legalentity": false}, "products": [`,
			id, date, kopText(total), id, 100000+rng.IntN(900000), jsonString(name), jsonString(name))
		b.Write(bytes.Join(prods, []byte(", ")))
		b.WriteString(`], "prepayment": 0, "prepaymentEnable": true}`)
		d.Bills = append(d.Bills, b.Bytes())
	}
	return d
}

// kopText writes kopecks as the upstream writes money: 4604.04, 4604.4, 4604.
func kopText(k int64) string {
	if k%100 == 0 {
		return strconv.FormatInt(k/100, 10)
	}
	s := fmt.Sprintf("%d.%02d", k/100, k%100)
	if s[len(s)-1] == '0' {
		s = s[:len(s)-1]
	}
	return s
}

func randText(rng *rand.Rand, n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!\"%&'*+-./_,:;=<>?"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b)
}

func randUUID(rng *rand.Rand) string {
	var b [16]byte
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
