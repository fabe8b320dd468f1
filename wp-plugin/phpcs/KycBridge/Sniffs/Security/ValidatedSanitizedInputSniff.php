<?php
/**
 * Request input must be sanitised and unslashed before use (a simplified
 * WordPress.Security.ValidatedSanitizedInput): $_GET, $_POST, $_REQUEST, $_COOKIE, $_SERVER and
 * $_FILES may only be read inside isset()/empty() or a sanitising function, through wp_unslash().
 *
 * @package KycBridge
 */

namespace KycBridge\Sniffs\Security;

use PHP_CodeSniffer\Files\File;
use PHP_CodeSniffer\Sniffs\Sniff;
use PHP_CodeSniffer\Util\Tokens;

/**
 * Flags raw superglobal input.
 */
class ValidatedSanitizedInputSniff implements Sniff {

	/**
	 * Superglobals holding request input.
	 *
	 * @var string[]
	 */
	const INPUT = array( '$_GET', '$_POST', '$_REQUEST', '$_COOKIE', '$_SERVER', '$_FILES' );

	/**
	 * Functions that sanitise.
	 *
	 * @var string[]
	 */
	public $sanitizers = array(
		'sanitize_text_field', 'sanitize_textarea_field', 'sanitize_key', 'sanitize_email', 'sanitize_title',
		'sanitize_file_name', 'sanitize_user', 'esc_url_raw', 'absint', 'intval', 'floatval', 'boolval',
		'rest_sanitize_boolean', 'wp_verify_nonce', 'check_admin_referer', 'sanitize_hex_color',
	);

	/**
	 * Sanitisers that do not need wp_unslash() (numbers, nonces).
	 *
	 * @var string[]
	 */
	public $unslash_free = array( 'absint', 'intval', 'floatval', 'boolval', 'wp_verify_nonce' );

	/**
	 * Tokens to listen for.
	 *
	 * @return int[]
	 */
	public function register() {
		return array( T_VARIABLE );
	}

	/**
	 * Check one superglobal read.
	 *
	 * @param File $phpcs_file File.
	 * @param int  $ptr        Token position.
	 */
	public function process( File $phpcs_file, $ptr ) {
		$tokens = $phpcs_file->getTokens();
		if ( ! in_array( $tokens[ $ptr ]['content'], self::INPUT, true ) ) {
			return;
		}
		$names = $this->enclosing_calls( $phpcs_file, $ptr );
		if ( array_intersect( $names, array( 'isset', 'empty', 'array_key_exists' ) ) ) {
			return;
		}
		$after = $this->after_index( $phpcs_file, $ptr );
		if ( false !== $after && in_array( $tokens[ $after ]['code'], array( T_EQUAL ), true ) ) {
			return; // Written, not read.
		}
		$prev = $phpcs_file->findPrevious( Tokens::$emptyTokens, $ptr - 1, null, true );
		if ( false !== $prev && in_array( $tokens[ $prev ]['code'], array( T_INT_CAST, T_BOOL_CAST, T_DOUBLE_CAST ), true ) ) {
			return;
		}
		$sanitizer = array_values( array_intersect( $names, $this->sanitizers ) );
		if ( ! $sanitizer ) {
			$phpcs_file->addError( '%s is read without sanitising it (sanitize_text_field(), sanitize_key(), absint() …)', $ptr, 'InputNotSanitized', array( $tokens[ $ptr ]['content'] ) );
			return;
		}
		if ( ! in_array( 'wp_unslash', $names, true ) && ! array_intersect( $sanitizer, $this->unslash_free ) ) {
			$phpcs_file->addError( '%s is sanitised without wp_unslash() first', $ptr, 'MissingUnslash', array( $tokens[ $ptr ]['content'] ) );
		}
	}

	/**
	 * Names of the function calls whose parentheses enclose the token, innermost first.
	 *
	 * @param File $phpcs_file File.
	 * @param int  $ptr        Token.
	 * @return string[]
	 */
	private function enclosing_calls( File $phpcs_file, $ptr ) {
		$tokens = $phpcs_file->getTokens();
		$names  = array();
		if ( empty( $tokens[ $ptr ]['nested_parenthesis'] ) ) {
			return $names;
		}
		foreach ( array_reverse( $tokens[ $ptr ]['nested_parenthesis'], true ) as $open => $close ) {
			$before = $phpcs_file->findPrevious( Tokens::$emptyTokens, $open - 1, null, true );
			if ( false !== $before && in_array( $tokens[ $before ]['code'], array( T_STRING, T_ISSET, T_EMPTY ), true ) ) {
				$names[] = strtolower( $tokens[ $before ]['content'] );
			}
		}
		return $names;
	}

	/**
	 * The first token after $var[...][...].
	 *
	 * @param File $phpcs_file File.
	 * @param int  $ptr        Variable token.
	 * @return int|false
	 */
	private function after_index( File $phpcs_file, $ptr ) {
		$tokens = $phpcs_file->getTokens();
		$next   = $phpcs_file->findNext( Tokens::$emptyTokens, $ptr + 1, null, true );
		while ( false !== $next && T_OPEN_SQUARE_BRACKET === $tokens[ $next ]['code'] && isset( $tokens[ $next ]['bracket_closer'] ) ) {
			$next = $phpcs_file->findNext( Tokens::$emptyTokens, $tokens[ $next ]['bracket_closer'] + 1, null, true );
		}
		return $next;
	}
}
