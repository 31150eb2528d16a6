# ruff: noqa: E501  (the requests are data, kept whole)
"""Write langs_dev.jsonl: short requests in six languages the fast path's language check did not know, to tune on
(round 38).

Why: round 37's held-out read of fresh_arenahard2 found 23 of its 37 messages in another language read as English —
12 Vietnamese, a Finnish and a Polish one among them: `agents/encoder.py`'s function-word lists hold Spanish, French,
German, Portuguese, Italian, Dutch and Indonesian only. No tuning file held a line in Vietnamese, Finnish, Polish,
Turkish or Czech, so no lever for them could be chosen without reading a held-out set. This file is that tuning data.

What: 20 requests in each of Vietnamese, Finnish, Polish, Turkish, Czech and Indonesian — for each, 3 chat, 5 research
(one of them a word problem), 4 writer, 3 engineer and 5 utility (translate, correct, classify, extract or convert,
summarise a given text). Written by round 38's helper "route38" in the kinds and wording of public instruction
collections in those languages, not copied from them: the Aya dataset (CohereForAI/aya_dataset, Apache-2.0: people's
own prompts in fin, pol, tur, vie, ind and 60 more languages), the Vietnamese Alpaca translations that telexyz/GPT4VN
lists (``vi_alpaca_reduced.jsonl``: "Viết email xin nghỉ phép …"-style instructions), and Open Assistant's first
messages (greetings, questions about the assistant, everyday advice). Labelled line by line by POLICY.md when written
(``accept`` best fit first). A tuning file: the helper who wrote it chose round 38's lever on it, so it is not a
held-out set; the held-out sets (routing_sets.HELD_OUT) say whether a lever carries.
Run: python mklangs_dev.py > langs_dev.jsonl
"""
import json

AGENTS = {"c": "chat", "r": "research", "w": "writer", "e": "engineer", "u": "utility"}
LANGUAGES = {"vi": "Vietnamese", "fi": "Finnish", "pl": "Polish", "tr": "Turkish", "cs": "Czech", "id": "Indonesian"}
#: language | accepted agents (initials, best fit first) | the request ("\\n" a line break)
LINES = r"""vi|c|Chào bạn, hôm nay bạn thế nào?
vi|cw|Bạn có thể kể cho tôi một câu chuyện cười không?
vi|c|Bạn là ai và ai đã tạo ra bạn?
vi|r|Tại sao bầu trời có màu xanh?
vi|r|Thủ đô của Phần Lan là gì?
vi|r|Những lợi ích của việc uống trà xanh đối với sức khỏe là gì?
vi|r|Giải thích sự khác nhau giữa lãi suất đơn và lãi suất kép.
vi|re|Một người đi xe đạp với vận tốc 15 km/h trong 2 giờ 30 phút. Hỏi người đó đi được bao nhiêu km?
vi|w|Viết một bài thơ ngắn về mùa thu Hà Nội.
vi|w|Hãy viết email xin nghỉ phép 3 ngày gửi quản lý của tôi.
vi|w|Viết một đoạn mô tả sản phẩm cho chiếc bình giữ nhiệt bằng thép không gỉ.
vi|w|Hãy gợi ý 5 tên cho một quán cà phê nhỏ gần trường đại học.
vi|e|Viết hàm Python để kiểm tra một chuỗi có phải là chuỗi đối xứng hay không.
vi|e|Làm thế nào để hoàn tác commit cuối cùng trong git mà không mất các thay đổi?
vi|e|Tại sao đoạn code này báo lỗi IndexError: list index out of range?\nfor i in range(len(a)+1):\n    print(a[i])
vi|uw|Dịch câu sau sang tiếng Anh: Tôi rất vui được gặp bạn.
vi|uw|Sửa lỗi chính tả trong đoạn văn sau: Hôm qua tôi đi chợ mua rau và trái cây, nhưng trơì mưa nên tôi về sớm.
vi|ur|Phân loại cảm xúc của câu sau là tích cực, tiêu cực hay trung tính: "Dịch vụ ở nhà hàng này thật tệ."
vi|u|Trích xuất tên người, địa điểm và ngày tháng từ đoạn văn sau dưới dạng JSON: Ngày 2 tháng 9 năm 1945, Hồ Chí Minh đọc bản Tuyên ngôn Độc lập tại quảng trường Ba Đình.
vi|uwr|Tóm tắt đoạn văn sau trong một câu: Biến đổi khí hậu đang ảnh hưởng nghiêm trọng đến đồng bằng sông Cửu Long. Nước biển dâng và xâm nhập mặn làm giảm năng suất lúa, khiến nhiều nông dân phải chuyển sang nuôi tôm hoặc rời quê lên thành phố tìm việc.
fi|c|Hei! Mitä sinulle kuuluu tänään?
fi|cw|Kerro minulle vitsi, olen vähän alakuloinen.
fi|c|Oletko sinä ihminen vai kone?
fi|r|Miksi Suomessa on niin paljon järviä?
fi|r|Mikä on ero sähköauton ja hybridiauton välillä?
fi|r|Kuka kirjoitti Seitsemän veljestä ja milloin se julkaistiin?
fi|rc|Miten voin parantaa unen laatua talvella, kun on koko ajan pimeää?
fi|re|Jos 4 työntekijää tekee työn 6 päivässä, kuinka monessa päivässä 3 työntekijää tekee saman työn?
fi|w|Kirjoita lyhyt runo kesäyöstä mökillä.
fi|w|Kirjoita saatekirje myyjän työpaikkaa varten. Minulla on kolmen vuoden kokemus asiakaspalvelusta.
fi|w|Keksi iskulause kierrätystä edistävälle kampanjalle.
fi|wr|Laadi tuntisuunnitelma kolmannen luokan matematiikan tunnille murtoluvuista.
fi|e|Kirjoita JavaScript-funktio, joka poistaa taulukosta kaikki duplikaatit.
fi|e|Miten asennan Dockerin Ubuntuun ja käynnistän ensimmäisen kontin?
fi|e|Mitä tämä SQL-kysely tekee? SELECT nimi, COUNT(*) FROM tilaukset GROUP BY nimi HAVING COUNT(*) > 5;
fi|uw|Käännä seuraava lause englanniksi: Huomenna sataa todennäköisesti koko päivän.
fi|uw|Korjaa kielioppivirheet seuraavasta tekstistä: Minä menin kauppaan ja ostin kaksi maito ja yksi leipä.
fi|u|Muunna seuraavat tiedot JSON-muotoon: nimi: Matti, ikä: 34, kaupunki: Tampere
fi|ur|Luokittele seuraavat sanat hedelmiin ja vihanneksiin: omena, porkkana, banaani, peruna, päärynä, kurkku.
fi|uwr|Tiivistä seuraava teksti yhteen lauseeseen: Helsingin kaupunki aikoo lisätä pyöräteitä keskustaan seuraavien viiden vuoden aikana. Tavoitteena on vähentää autoliikennettä ja parantaa ilmanlaatua, mutta osa yrittäjistä pelkää pysäköintipaikkojen vähenemistä.
pl|c|Cześć! Jak się masz?
pl|cw|Czy możesz udawać pirata i porozmawiać ze mną?
pl|c|Nudzi mi się, pogadasz ze mną chwilę?
pl|r|Dlaczego liście zmieniają kolor jesienią?
pl|r|Jakie są objawy niedoboru witaminy D?
pl|r|Kim był Mikołaj Kopernik i co odkrył?
pl|r|Jaka jest różnica między kredytem hipotecznym o stałym a o zmiennym oprocentowaniu?
pl|re|Pociąg jedzie z prędkością 80 km/h. Ile czasu zajmie mu pokonanie 200 km?
pl|w|Napisz wiersz o zimie w górach.
pl|w|Napisz krótkie przemówienie na wesele mojego brata.
pl|w|Zaproponuj pięć chwytliwych nazw dla sklepu internetowego z herbatą.
pl|w|Napisz post na Facebooka, który zaprasza na festyn rodzinny w sobotę.
pl|e|Napisz funkcję w Pythonie, która sprawdza, czy liczba jest liczbą pierwszą.
pl|e|Jak skonfigurować nginx jako reverse proxy dla aplikacji działającej na porcie 3000?
pl|e|Dostaję błąd TypeError: Cannot read properties of undefined (reading 'map') w React. Co robię źle?
pl|uw|Przetłumacz na angielski: Dziękuję za szybką odpowiedź, wszystko już działa.
pl|uw|Popraw błędy ortograficzne w tym zdaniu: Wczoraj poszłem do sklepu i kupiłem chleb i mleko.
pl|u|Wypisz wszystkie daty z poniższego tekstu: Spotkanie odbędzie się 12 marca, a kolejne 3 kwietnia i 15 maja.
pl|ur|Określ, czy ta recenzja jest pozytywna czy negatywna: „Obsługa była miła, ale jedzenie zimne i drogie.”
pl|u|Zamień poniższą tabelę na format CSV:\nImię | Wiek | Miasto\nAnna | 28 | Kraków\nPiotr | 35 | Gdańsk
tr|c|Merhaba, nasılsın?
tr|cw|Bana bir fıkra anlatır mısın?
tr|c|Senin adın ne, seni kim yaptı?
tr|r|Depremler neden olur ve nasıl ölçülür?
tr|r|İstanbul'un fethi hangi yılda gerçekleşti ve önemi nedir?
tr|r|Kahve içmenin sağlığa faydaları ve zararları nelerdir?
tr|r|Enflasyon nedir ve faiz oranları enflasyonu nasıl etkiler?
tr|re|Bir dikdörtgenin uzun kenarı 12 cm, kısa kenarı 5 cm ise köşegeni kaç cm'dir?
tr|w|Anneler Günü için duygusal bir kart mesajı yaz.
tr|w|Yeni açılan bir pastane için Instagram gönderisi yaz.
tr|w|Deniz kenarında geçen kısa bir hikaye yazar mısın?
tr|w|İş görüşmesinden sonra gönderilecek bir teşekkür e-postası yazmama yardım et.
tr|e|Python'da bir sözlüğü değerlerine göre nasıl sıralarım?
tr|e|Bu hata ne anlama geliyor: ModuleNotFoundError: No module named 'pandas'
tr|e|Bir web sayfasında butonu ortalamak için CSS kodu yazar mısın?
tr|uw|Şu cümleyi İngilizceye çevir: Toplantı yarın saat onda başlayacak.
tr|uw|Aşağıdaki metindeki yazım hatalarını düzelt: Bugün hava çok güzeldi ama ben evde kalmayı terchi ettim.
tr|ur|Aşağıdaki e-postaları spam veya spam değil olarak sınıflandır:\n1. Tebrikler! 1000 TL kazandınız, hemen tıklayın.\n2. Yarınki toplantının gündemi ekte.
tr|u|Bu metindeki kişi adlarını listele: Ahmet ve Ayşe dün Mehmet Bey'in evine gittiler.
tr|u|Aşağıdaki sıcaklıkları Fahrenheit'a dönüştür: 20°C, 35°C, -5°C
cs|c|Ahoj, jak se máš?
cs|cw|Můžeš mi říct nějaký vtip?
cs|c|Jsi skutečný člověk, nebo robot?
cs|r|Proč je moře slané?
cs|r|Kdy vznikla Československá republika a kdo byl jejím prvním prezidentem?
cs|r|Jaký je rozdíl mezi virem a bakterií?
cs|r|Co bych měl vidět, když pojedu na tři dny do Brna?
cs|re|Kolik je 15 % z 240 a jak se to počítá?
cs|w|Napiš básničku k narozeninám pro mou babičku.
cs|w|Napiš motivační dopis na pozici účetní.
cs|w|Vymysli název a krátký popis pro novou deskovou hru o vesmíru.
cs|w|Napiš krátkou pohádku o ježkovi, který se bál tmy.
cs|e|Napiš v Javě metodu, která obrátí pořadí prvků v poli.
cs|e|Jak v Excelu sečtu hodnoty ve sloupci B jen pro řádky, kde je ve sloupci A „Praha“?
cs|e|Proč mi git push hlásí chybu rejected - non-fast-forward a jak to opravím?
cs|uw|Přelož do angličtiny: Zítra nebudu v kanceláři, pracuji z domova.
cs|uw|Oprav gramatické chyby v textu: Včera jsme byly s kamarádem v kině a film se nám moc líbyl.
cs|u|Seřaď tato města podle abecedy: Plzeň, Brno, Ostrava, Olomouc, Praha, Liberec.
cs|u|Převeď tento text na seznam s odrážkami: Na výlet si vezmi pláštěnku, svačinu, vodu, mapu a nabitý telefon.
cs|u|Extrahuj z následující objednávky jméno zákazníka, produkt a cenu ve formátu JSON: Objednávka č. 4521 – Jana Nováková objednala kávovar Philips za 3 490 Kč.
id|c|Halo, apa kabar hari ini?
id|c|Aku lagi sedih, boleh ngobrol sebentar?
id|c|Siapa namamu dan apa yang bisa kamu lakukan?
id|r|Mengapa Indonesia memiliki banyak gunung berapi?
id|r|Apa perbedaan antara cuaca dan iklim?
id|r|Siapa presiden pertama Indonesia dan kapan ia menjabat?
id|rc|Bagaimana cara menabung yang baik untuk mahasiswa?
id|re|Jika harga sebuah buku Rp45.000 dan didiskon 20%, berapa harga yang harus dibayar?
id|w|Buatkan puisi tentang hujan di bulan Desember.
id|w|Tuliskan surat lamaran kerja untuk posisi staf administrasi.
id|w|Buat caption Instagram untuk foto liburan di Bali.
id|w|Tuliskan cerita pendek tentang persahabatan seorang anak dan kucingnya.
id|e|Buatkan fungsi PHP untuk menghitung faktorial sebuah angka.
id|e|Bagaimana cara membuat tabel baru di MySQL dengan kolom id, nama, dan email?
id|e|Kenapa program Java saya error NullPointerException di baris ini: String s = null; s.length();
id|uw|Terjemahkan ke bahasa Inggris: Saya akan datang terlambat karena macet.
id|uw|Perbaiki ejaan kalimat ini: Sya mau pergi ke pasar besok pagi bersma ibu.
id|u|Ubah data berikut menjadi tabel: Nama: Budi, Umur: 25; Nama: Sari, Umur: 30.
id|ur|Tentukan sentimen dari ulasan berikut: "Pengiriman cepat dan barangnya bagus sekali."
id|uwr|Ringkas paragraf berikut menjadi satu kalimat: Pemerintah kota Jakarta mulai menerapkan sistem ganjil genap di beberapa jalan utama. Kebijakan ini bertujuan mengurangi kemacetan dan polusi udara, namun sebagian warga mengeluhkan kesulitan berangkat kerja."""


def rows() -> list[dict]:
    out = []
    for n, line in enumerate(LINES.splitlines(), 1):
        lang, accept, text = line.split("|", 2)
        out.append({"text": text.replace("\\n", "\n"), "accept": [AGENTS[a] for a in accept],
                    "source": f"route38:{lang}:{n}", "style": LANGUAGES[lang]})
    return out


if __name__ == "__main__":
    for row in rows():
        print(json.dumps(row, ensure_ascii=False))
