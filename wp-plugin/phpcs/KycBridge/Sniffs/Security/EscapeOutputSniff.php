<?php
/**
 * Output must be escaped: what echo, print, printf and friends output must be a literal, a
 * constant, a cast to a number, or the result of an escaping function (a simplified
 * WordPress.Security.EscapeOutput).
 *
 * @package KycBridge
 */

namespace KycBridge\Sniffs\Security;

use PHP_CodeSniffer\Files\File;
use PHP_CodeSniffer\Sniffs\Sniff;
use PHP_CodeSniffer\Util\Tokens;

/**
 * Flags unescaped output.
 */
class EscapeOutputSniff implements Sniff {

	/**
	 * Functions whose result is safe to print.
	 *
	 * @var string[]
	 */
	public $safe_functions = array(
		'esc_html', 'esc_attr', 'esc_url', 'esc_js', 'esc_textarea', 'esc_xml', 'esc_html__', 'esc_attr__',
		'esc_html_x', 'esc_attr_x', 'wp_kses', 'wp_kses_post', 'wp_kses_data', 'absint', 'intval', 'floatval',
		'number_format_i18n', 'selected', 'checked', 'disabled', 'readonly', 'wp_nonce_field', 'tag_escape',
		'count', 'get_submit_button', 'sanitize_html_class',
	);

	/**
	 * Functions that print their arguments after the format (index 0) or all of them.
	 *
	 * @var array<string, int>
	 */
	public $printing_functions = array(
		'printf'  => 0,
		'vprintf' => 0,
		'wp_die'  => 0,
	);

	/**
	 * Tokens to listen for.
	 *
	 * @return int[]
	 */
	public function register() {
		return array( T_ECHO, T_PRINT, T_OPEN_TAG_WITH_ECHO, T_STRING, T_EXIT );
	}

	/**
	 * Check one output statement.
	 *
	 * @param File $phpcs_file File.
	 * @param int  $ptr        Token position.
	 */
	public function process( File $phpcs_file, $ptr ) {
		$tokens = $phpcs_file->getTokens();
		$code   = $tokens[ $ptr ]['code'];
		if ( T_STRING === $code ) {
			$name = strtolower( $tokens[ $ptr ]['content'] );
			$next = $phpcs_file->findNext( Tokens::$emptyTokens, $ptr + 1, null, true );
			$prev = $phpcs_file->findPrevious( Tokens::$emptyTokens, $ptr - 1, null, true );
			if ( false === $next || T_OPEN_PARENTHESIS !== $tokens[ $next ]['code'] || in_array( $tokens[ $prev ]['code'], array( T_OBJECT_OPERATOR, T_DOUBLE_COLON, T_FUNCTION, T_NEW ), true ) ) {
				return;
			}
			if ( in_array( $name, array( '_e', '_ex' ), true ) ) {
				$phpcs_file->addError( '%s() prints a translation unescaped; use esc_html_e() or esc_attr_e()', $ptr, 'UnsafePrintingFunction', array( $name ) );
				return;
			}
			if ( ! isset( $this->printing_functions[ $name ] ) || ! isset( $tokens[ $next ]['parenthesis_closer'] ) ) {
				return;
			}
			$args = $this->split( $phpcs_file, $next + 1, $tokens[ $next ]['parenthesis_closer'], array( T_COMMA ) );
			if ( 'wp_die' === $name ) {
				$args = array_slice( $args, 0, 1 );
			}
			foreach ( $args as $arg ) {
				$this->check_expression( $phpcs_file, $arg[0], $arg[1] );
			}
			return;
		}
		if ( T_EXIT === $code ) {
			$open = $phpcs_file->findNext( Tokens::$emptyTokens, $ptr + 1, null, true );
			if ( false !== $open && T_OPEN_PARENTHESIS === $tokens[ $open ]['code'] && isset( $tokens[ $open ]['parenthesis_closer'] ) && $tokens[ $open ]['parenthesis_closer'] > $open + 1 ) {
				$this->check_expression( $phpcs_file, $open + 1, $tokens[ $open ]['parenthesis_closer'] );
			}
			return;
		}
		$end = $phpcs_file->findNext( array( T_SEMICOLON, T_CLOSE_TAG ), $ptr + 1 );
		if ( false === $end ) {
			return;
		}
		foreach ( $this->split( $phpcs_file, $ptr + 1, $end, array( T_COMMA ) ) as $part ) {
			$this->check_expression( $phpcs_file, $part[0], $part[1] );
		}
	}

	/**
	 * Split [start, end) at depth-0 tokens of the given kinds.
	 *
	 * @param File  $phpcs_file File.
	 * @param int   $start      First token.
	 * @param int   $end        One past the last token.
	 * @param int[] $separators Token codes.
	 * @return array<int, array{0: int, 1: int}>
	 */
	private function split( File $phpcs_file, $start, $end, $separators ) {
		$tokens = $phpcs_file->getTokens();
		$parts  = array();
		$from   = $start;
		for ( $i = $start; $i < $end; $i++ ) {
			if ( isset( $tokens[ $i ]['parenthesis_closer'] ) && $tokens[ $i ]['parenthesis_closer'] > $i && T_OPEN_PARENTHESIS === $tokens[ $i ]['code'] ) {
				$i = $tokens[ $i ]['parenthesis_closer'];
				continue;
			}
			if ( T_OPEN_SHORT_ARRAY === $tokens[ $i ]['code'] || T_OPEN_SQUARE_BRACKET === $tokens[ $i ]['code'] ) {
				$i = $tokens[ $i ]['bracket_closer'];
				continue;
			}
			if ( in_array( $tokens[ $i ]['code'], $separators, true ) ) {
				$parts[] = array( $from, $i );
				$from    = $i + 1;
			}
		}
		$parts[] = array( $from, $end );
		return $parts;
	}

	/**
	 * Check that [start, end) is safe output.
	 *
	 * @param File $phpcs_file File.
	 * @param int  $start      First token.
	 * @param int  $end        One past the last token.
	 */
	private function check_expression( File $phpcs_file, $start, $end ) {
		$tokens = $phpcs_file->getTokens();
		// A ternary: only its two branches are printed.
		$then = null;
		$else = null;
		$depth = 0;
		for ( $i = $start; $i < $end; $i++ ) {
			if ( T_OPEN_PARENTHESIS === $tokens[ $i ]['code'] && isset( $tokens[ $i ]['parenthesis_closer'] ) ) {
				$i = $tokens[ $i ]['parenthesis_closer'];
				continue;
			}
			if ( T_INLINE_THEN === $tokens[ $i ]['code'] && 0 === $depth && null === $then ) {
				$then = $i;
			} elseif ( T_INLINE_ELSE === $tokens[ $i ]['code'] && null !== $then && null === $else ) {
				$else = $i;
			}
		}
		if ( null !== $then && null !== $else ) {
			$this->check_expression( $phpcs_file, $then + 1, $else );
			$this->check_expression( $phpcs_file, $else + 1, $end );
			return;
		}
		foreach ( $this->split( $phpcs_file, $start, $end, array( T_STRING_CONCAT ) ) as $part ) {
			$this->check_operand( $phpcs_file, $part[0], $part[1] );
		}
	}

	/**
	 * One operand of a concatenation.
	 *
	 * @param File $phpcs_file File.
	 * @param int  $start      First token.
	 * @param int  $end        One past the last token.
	 */
	private function check_operand( File $phpcs_file, $start, $end ) {
		$tokens = $phpcs_file->getTokens();
		$first  = $phpcs_file->findNext( Tokens::$emptyTokens, $start, $end, true );
		if ( false === $first ) {
			return;
		}
		$code = $tokens[ $first ]['code'];
		$safe = array( T_CONSTANT_ENCAPSED_STRING, T_LNUMBER, T_DNUMBER, T_TRUE, T_FALSE, T_NULL, T_INT_CAST, T_DOUBLE_CAST, T_BOOL_CAST, T_LINE, T_DIR, T_FILE );
		if ( in_array( $code, $safe, true ) ) {
			return;
		}
		if ( T_OPEN_PARENTHESIS === $code && isset( $tokens[ $first ]['parenthesis_closer'] ) ) {
			$this->check_expression( $phpcs_file, $first + 1, $tokens[ $first ]['parenthesis_closer'] );
			return;
		}
		if ( T_STRING === $code || T_NS_SEPARATOR === $code ) {
			$name_ptr = $first;
			while ( T_NS_SEPARATOR === $tokens[ $name_ptr ]['code'] || ( T_STRING === $tokens[ $name_ptr ]['code'] && isset( $tokens[ $name_ptr + 1 ] ) && T_NS_SEPARATOR === $tokens[ $name_ptr + 1 ]['code'] ) ) {
				++$name_ptr;
			}
			$next = $phpcs_file->findNext( Tokens::$emptyTokens, $name_ptr + 1, $end, true );
			if ( false === $next || T_DOUBLE_COLON === $tokens[ $next ]['code'] && $this->is_class_constant( $phpcs_file, $next, $end ) ) {
				return; // A constant or a class constant.
			}
			if ( T_OPEN_PARENTHESIS === $tokens[ $next ]['code'] && in_array( strtolower( $tokens[ $name_ptr ]['content'] ), $this->safe_functions, true ) ) {
				return;
			}
		}
		$phpcs_file->addError( 'All output should be escaped (esc_html(), esc_attr(), esc_url(), wp_kses_post() …); found "%s".', $first, 'OutputNotEscaped', array( trim( $phpcs_file->getTokensAsString( $first, min( $end - $first, 8 ) ) ) ) );
	}

	/**
	 * Whether Foo::BAR (not Foo::bar()) follows.
	 *
	 * @param File $phpcs_file File.
	 * @param int  $colon      The :: token.
	 * @param int  $end        Limit.
	 * @return bool
	 */
	private function is_class_constant( File $phpcs_file, $colon, $end ) {
		$tokens = $phpcs_file->getTokens();
		$name   = $phpcs_file->findNext( Tokens::$emptyTokens, $colon + 1, $end, true );
		if ( false === $name || T_STRING !== $tokens[ $name ]['code'] ) {
			return false;
		}
		$after = $phpcs_file->findNext( Tokens::$emptyTokens, $name + 1, $end, true );
		return false === $after || T_OPEN_PARENTHESIS !== $tokens[ $after ]['code'];
	}
}
