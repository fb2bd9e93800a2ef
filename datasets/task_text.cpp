// Prompt templates, word lists and prose of the synthetic tasks, one block
// per language. Prompts ask for the bare result, so answers need no prose.
// The copy task puts the words on a line of their own: at the start of a
// line a word gets the same tokens as at the start of the reply (no "▁"
// space marker), so copying is copying ids, which a tiny model learns fast;
// after ": " the first word's tokens would differ from the answer's.
// Where a language's article would change with the number that follows
// (Catalan "de l'1", Italian "dopo l'8"), the template avoids the article.
#include "datasets/task_text.h"

namespace st::datasets {

const std::vector<LanguageText>& language_texts() {
  static const std::vector<LanguageText> texts = {
      {"en",
       {"What is {a} + {b}?", "Which number comes after {n}?", "Reverse the order: {list}",
        "Sort from smallest to largest: {list}", "How many times does \"{x}\" appear? {list}",
        "Repeat exactly:\n{words}"},
       {"cat", "dog", "sun", "tree", "book", "milk", "bird", "fish", "rain", "moon", "door", "road",
        "hand", "ship", "star", "bread", "apple", "house", "river", "green", "water", "light", "snow", "wind"},
       "Salamandra is a family of language models trained on many European languages. "
       "The weather was mild this morning, so we walked along the river to the old market. "
       "Numbers, letters and short words are enough to practise careful answers. "
       "Please answer with the result only."},
      {"es",
       {"¿Cuánto es {a} + {b}?", "¿Qué número va después del {n}?", "Invierte el orden: {list}",
        "Ordena de menor a mayor: {list}", "¿Cuántas veces aparece «{x}»? {list}", "Repite exactamente:\n{words}"},
       {"gato", "perro", "sol", "casa", "libro", "leche", "pan", "mar", "luna", "agua", "flor", "río",
        "árbol", "mesa", "silla", "fuego", "cielo", "verde", "nube", "tren", "niño", "lago", "calle", "hoja"},
       "Salamandra es una familia de modelos de lenguaje entrenados en muchas lenguas europeas. "
       "Esta mañana hacía buen tiempo, así que paseamos junto al río hasta el mercado viejo. "
       "Los números, las letras y las palabras cortas bastan para practicar respuestas precisas. "
       "Responde solo con el resultado."},
      {"ca",
       {"Quant fa {a} + {b}?", "Quin nombre ve després de {n}?", "Inverteix l'ordre: {list}",
        "Ordena de més petit a més gran: {list}", "Quantes vegades apareix «{x}»? {list}",
        "Repeteix exactament:\n{words}"},
       {"gat", "gos", "sol", "casa", "llibre", "llet", "pa", "mar", "lluna", "aigua", "flor", "riu",
        "arbre", "taula", "cadira", "foc", "cel", "verd", "núvol", "tren", "nen", "llac", "carrer", "fulla"},
       "Salamandra és una família de models de llenguatge entrenats en moltes llengües europees. "
       "Aquest matí feia bon temps, així que vam passejar vora el riu fins al mercat vell. "
       "Els nombres, les lletres i les paraules curtes són suficients per practicar respostes precises. "
       "Respon només amb el resultat."},
      {"de",
       {"Was ist {a} + {b}?", "Welche Zahl kommt nach {n}?", "Kehre die Reihenfolge um: {list}",
        "Sortiere aufsteigend: {list}", "Wie oft kommt „{x}“ vor? {list}", "Wiederhole genau:\n{words}"},
       {"Katze", "Hund", "Sonne", "Haus", "Buch", "Milch", "Brot", "Meer", "Mond", "Wasser", "Blume", "Fluss",
        "Baum", "Tisch", "Stuhl", "Feuer", "Himmel", "grün", "Wolke", "Zug", "Kind", "See", "Straße", "Blatt"},
       "Salamandra ist eine Familie von Sprachmodellen, die mit vielen europäischen Sprachen trainiert wurden. "
       "Heute Morgen war das Wetter mild, also gingen wir am Fluss entlang zum alten Markt. "
       "Zahlen, Buchstaben und kurze Wörter genügen, um genaue Antworten zu üben. "
       "Antworte nur mit dem Ergebnis."},
      {"fr",
       {"Combien font {a} + {b} ?", "Quel nombre vient après {n} ?", "Inverse l'ordre : {list}",
        "Trie du plus petit au plus grand : {list}", "Combien de fois apparaît « {x} » ? {list}",
        "Répète exactement :\n{words}"},
       {"chat", "chien", "soleil", "maison", "livre", "lait", "pain", "mer", "lune", "eau", "fleur", "fleuve",
        "arbre", "table", "chaise", "feu", "ciel", "vert", "nuage", "train", "enfant", "lac", "rue", "feuille"},
       "Salamandra est une famille de modèles de langue entraînés sur de nombreuses langues européennes. "
       "Ce matin, il faisait doux, alors nous avons marché le long de la rivière jusqu'au vieux marché. "
       "Des nombres, des lettres et des mots courts suffisent pour s'exercer à répondre avec précision. "
       "Réponds uniquement avec le résultat."},
      {"it",
       {"Quanto fa {a} + {b}?", "Quale numero viene dopo {n}?", "Inverti l'ordine: {list}",
        "Ordina dal più piccolo al più grande: {list}", "Quante volte compare «{x}»? {list}",
        "Ripeti esattamente:\n{words}"},
       {"gatto", "cane", "sole", "casa", "libro", "latte", "pane", "mare", "luna", "acqua", "fiore", "fiume",
        "albero", "tavolo", "sedia", "fuoco", "cielo", "verde", "nuvola", "treno", "bambino", "lago", "strada",
        "foglia"},
       "Salamandra è una famiglia di modelli linguistici addestrati su molte lingue europee. "
       "Stamattina il tempo era mite, così abbiamo camminato lungo il fiume fino al vecchio mercato. "
       "Numeri, lettere e parole brevi bastano per esercitarsi a rispondere con precisione. "
       "Rispondi solo con il risultato."},
      {"pt",
       {"Quanto é {a} + {b}?", "Que número vem depois de {n}?", "Inverta a ordem: {list}",
        "Ordene do menor para o maior: {list}", "Quantas vezes aparece «{x}»? {list}",
        "Repita exatamente:\n{words}"},
       {"gato", "cão", "sol", "casa", "livro", "leite", "pão", "mar", "lua", "água", "flor", "rio",
        "árvore", "mesa", "cadeira", "fogo", "céu", "verde", "nuvem", "barco", "criança", "lago", "rua", "folha"},
       "Salamandra é uma família de modelos de linguagem treinados em muitas línguas europeias. "
       "Esta manhã o tempo estava ameno, por isso caminhámos junto ao rio até ao mercado velho. "
       "Números, letras e palavras curtas bastam para praticar respostas exatas. "
       "Responda apenas com o resultado."},
      {"gl",
       {"Canto é {a} + {b}?", "Que número vén despois de {n}?", "Inverte a orde: {list}",
        "Ordena de menor a maior: {list}", "Cantas veces aparece «{x}»? {list}", "Repite exactamente:\n{words}"},
       {"gato", "can", "sol", "casa", "libro", "leite", "pan", "mar", "lúa", "auga", "flor", "río",
        "árbore", "mesa", "cadeira", "lume", "ceo", "verde", "nube", "tren", "neno", "lago", "rúa", "folla"},
       "Salamandra é unha familia de modelos de linguaxe adestrados en moitas linguas europeas. "
       "Esta mañá facía bo tempo, así que paseamos á beira do río ata o mercado vello. "
       "Os números, as letras e as palabras curtas abondan para practicar respostas precisas. "
       "Responde só co resultado."},
      {"eu",
       // Basque marks case on the noun phrase; "{n} zenbakiaren ondoren"
       // ("after the number n") keeps the suffix off the digits.
       {"Zenbat da {a} + {b}?", "Zein zenbaki dator {n} zenbakiaren ondoren?", "Idatzi alderantzizko ordenan: {list}",
        "Ordenatu txikienetik handienera: {list}", "Zenbat aldiz agertzen da «{x}»? {list}",
        "Errepikatu zehazki:\n{words}"},
       {"katu", "txakur", "eguzki", "etxe", "liburu", "esne", "ogi", "itsaso", "ilargi", "ur", "lore", "ibai",
        "zuhaitz", "mahai", "aulki", "su", "zeru", "berde", "hodei", "tren", "haur", "aintzira", "kale", "hosto"},
       "Salamandra Europako hizkuntza askotan entrenatutako hizkuntza-ereduen familia bat da. "
       "Gaur goizean eguraldi ona zegoen, eta ibaiaren ertzetik merkatu zaharreraino ibili gara. "
       "Zenbakiak, letrak eta hitz laburrak nahikoak dira erantzun zehatzak lantzeko. "
       "Erantzun emaitzarekin bakarrik."},
  };
  return texts;
}

}  // namespace st::datasets
