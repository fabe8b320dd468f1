<?php
/**
 * Reading form input needs a nonce check first in the same function (a simplified
 * WordPress.Security.NonceVerification): $_POST, $_REQUEST and $_FILES are errors ("Missing"),
 * $_GET a warning ("Recommended") as in WPCS.
 *
 * @package KycBridge
 */

namespace KycBridge\Sniffs\Security;

use PHP_CodeSniffer\Files\File;
use PHP_CodeSniffer\Sniffs\Sniff;

/**
 * Flags form input read before any nonce check.
 */
class NonceVerificationSniff implements Sniff {

	/**
	 * Calls that verify a nonce.
	 *
	 * @var string[]
	 */
	public $verifiers = array( 'wp_verify_nonce', 'check_admin_referer', 'check_ajax_referer' );

	/**
	 * Tokens to listen for.
	 *
	 * @return int[]
	 */
	public function register() {
		return array( T_VARIABLE );
	}

	/**
	 * Check one read.
	 *
	 * @param File $phpcs_file File.
	 * @param int  $ptr        Token position.
	 */
	public function process( File $phpcs_file, $ptr ) {
		$tokens = $phpcs_file->getTokens();
		$name   = $tokens[ $ptr ]['content'];
		if ( ! in_array( $name, array( '$_POST', '$_REQUEST', '$_FILES', '$_GET' ), true ) ) {
			return;
		}
		$function = $phpcs_file->getCondition( $ptr, T_FUNCTION );
		if ( false === $function ) {
			$function = $phpcs_file->getCondition( $ptr, T_CLOSURE );
		}
		$start = false === $function ? 0 : $function;
		for ( $i = $start; $i < $ptr; $i++ ) {
			if ( T_STRING === $tokens[ $i ]['code'] && in_array( strtolower( $tokens[ $i ]['content'] ), $this->verifiers, true ) ) {
				return;
			}
		}
		if ( '$_GET' === $name ) {
			$phpcs_file->addWarning( '%s is read without a nonce check; say why none is needed (read-only?) or verify one', $ptr, 'Recommended', array( $name ) );
			return;
		}
		$phpcs_file->addError( '%s is read before a nonce is verified (wp_verify_nonce(), check_admin_referer())', $ptr, 'Missing', array( $name ) );
	}
}
